"""Answer forms: the form of known answers, the form share of predictions, and the per-run form table."""

from __future__ import annotations

import pandas as pd
import pytest

from cvitkit.eval.forms import answer_form, form_match, reference_form
from cvitkit.report.answer_forms import form_table


@pytest.mark.parametrize("text,form", [
    ("B", "letter"), (" (c) ", "letter"), ("d.", "letter"), ("A)", "letter"),
    ("3", "number"), ("-0.5", "number"), ("12%", "number"), (".25", "number"),
    ("[0.05, 0.33, 0.27, 0.55]", "coordinates"), ("(0.27, 0.24)", "coordinates"),
    ("(.222, 0.222222, 0.222222", "coordinates"), ("0.1,0.2", "coordinates"),
    ("circle", "short"), ("traffic light", "short"), ("no", "short"), ("BB", "short"), ("3 cats", "short"),
    ("there is a yellow box", "sentence"), ("a picture of a blue box", "sentence"),
    ("", "empty"), ("   ", "empty"), (None, "empty"),
])
def test_answer_form_of_known_answers(text, form):
    assert answer_form(text) == form


def test_reference_form_uses_the_first_of_several_references():
    assert reference_form(["a red car in a desert", "red car"]) == "sentence"
    assert reference_form([]) == "empty"
    assert reference_form("[0.1, 0.2, 0.3, 0.4]") == "coordinates"


def test_form_match_counts_answers_in_their_reference_form():
    preds = [{"text": "B", "answer": "A"},                            # letter for a letter: kept
             {"text": "there is a box", "answer": "C"},               # caption for a letter: lost
             {"text": "2", "answer": "4"},                            # number for a number: kept
             {"text": "(0.3, 0.4)", "answer": "[0.1, 0.2, 0.5, 0.6]"},  # a point for a box: still coordinates
             {"text": "no", "answer": "[0.1, 0.2, 0.5, 0.6]"}]         # a word for a box: lost
    assert form_match(preds) == pytest.approx(3 / 5)
    assert form_match([]) is None


def _profiles(shares: dict) -> dict:
    return {stage: {task: {"form_match": v} for task, v in tasks.items()} for stage, tasks in shares.items()}


def test_form_table_matches_hand_computation():
    matrix = pd.DataFrame([[50.0, None], [20.0, 60.0]], index=["A", "B"], columns=["A", "B"])
    answers = {"s/seq": _profiles({"A": {"A": 1.0, "B": 0.0}, "B": {"A": 0.4, "B": 0.9}})}
    single = pd.DataFrame([[30.0, 40.0]], index=["joint"], columns=["A", "B"])
    answers["s/joint"] = _profiles({"joint": {"A": 0.5, "B": 1.0}})
    table = form_table({"s/seq": matrix, "s/joint": single, "s/old": matrix}, {**answers, "s/old": {}})
    assert list(table.index) == ["s/seq", "s/joint"]  # runs without profiles are left out
    seq = table.loc["s/seq"]
    assert (seq["A"], seq["B"]) == pytest.approx((40.0, 90.0))
    assert seq["F_end"] == pytest.approx(65.0)
    assert seq["F_own"] == pytest.approx((100.0 + 90.0) / 2)  # f_AA after stage A, f_BB after stage B
    assert seq["F_drop"] == pytest.approx(95.0 - 65.0)
    joint = table.loc["s/joint"]
    assert joint["F_own"] == joint["F_end"] == pytest.approx(75.0) and joint["F_drop"] == 0


def test_form_table_of_a_stream_has_no_own_stage_columns():
    matrix = pd.DataFrame([[10.0, 20.0], [30.0, 40.0]], index=["chunk_001", "chunk_002"], columns=["A", "B"])
    table = form_table({"st/run": matrix}, {"st/run": _profiles({"chunk_001": {"A": 1.0, "B": 1.0},
                                                                   "chunk_002": {"A": 0.5, "B": 0.0}})})
    assert table.loc["st/run", "F_end"] == pytest.approx(25.0) and "F_own" not in table.columns


def test_answer_form_figure_draws_tasks_only():
    from cvitkit.report.plots import answer_form_figure

    table = pd.DataFrame({"A": [40.0], "B": [90.0], "F_end": [65.0]}, index=["s/seq"])
    fig = answer_form_figure(table, "t")
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["A", "B"]
    assert answer_form_figure(pd.DataFrame(), "t") is None
