"""Worked replies: what they write for each family, how records are rewritten, and how replies are read."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

from cvitkit.data import load_suite
from cvitkit.data.build import draw_sample, make_samples, sample_id, sample_index
from cvitkit.data.option_answers import AGREEMENT_COLUMNS
from cvitkit.data.synthetic import generate
from cvitkit.data.worked_answers import box_cell, check_worked, worked_agreement, worked_records, worked_reply
from cvitkit.errors import ConfigError, DataError
from cvitkit.eval.scorers import score

FIN = {t.name: t for t in load_suite("mllmcl_dcl").tasks}["Fin"]
MATH = {t.name: t for t in load_suite("mllmcl_acl").tasks}["Math"]
GROUNDING = {t.name: t for t in load_suite("coin").tasks}["Grounding"]


def _sample(truth, answer="", question=""):
    return SimpleNamespace(truth=truth, answer=answer, question=question)


def _record(question, answer, rid="t_train_00000"):
    return {"id": rid, "conversations": [{"from": "human", "value": f"<image>\n{question}"},
                                         {"from": "gpt", "value": answer}]}


def test_math_reply_writes_the_expression_then_its_result():
    for seed in range(20):
        s = generate("math", "diagram", {"mode": "digits", "ops": ["+", "-"]}, random.Random(seed), 32)
        reply = worked_reply(s, _record(s.question, s.answer))
        expression, result = reply.split("=")
        assert expression == f"{s.truth['a']}{s.truth['op']}{s.truth['b']}" and result == s.answer
        assert int(result) == eval(expression)   # noqa: S307 (two digits and an operator, generated here)


def test_object_count_reply_writes_the_counts_from_the_picture_then_the_result():
    """CLEVR-Math: the operands are counted here from the drawn objects and the question's words."""
    for seed in range(30):
        s = generate("math", "render", {"mode": "objects"}, random.Random(seed), 64)
        reply = worked_reply(s, _record(s.question, s.answer))
        objs, words = s.truth["objects"], s.question.lower().rstrip("?.").split()
        if s.truth["operation"] == "add":
            kind = next(o["kind"] for o in objs if any(w.startswith(o["kind"]) for w in words))
            added = next(int(w) for w in words if w.isdigit())
            expected = f"{sum(o['kind'] == kind for o in objs)}+{added}"
        else:
            taken = sum(o["colour"] in words or any(w.startswith(o["kind"]) for w in words) for o in objs)
            expected = f"{len(objs)}-{taken}"
        assert reply == f"{expected}={s.answer}"
    assert worked_agreement([""], ["5-2=3"], [_sample({"a": 5, "op": "-", "b": 2, "result": 3})]) == \
        dict(zip(AGREEMENT_COLUMNS, (100.0, 100.0)))


def test_chart_replies_write_asked_and_seen_direction_or_the_options_value():
    opts = {"chart": "candle", "answer_format": "mixed", "trends": ["up", "down"]}
    seen = set()
    for seed in range(40):
        s = generate("chart", "chart", opts, random.Random(seed), 32)
        reply = worked_reply(s, _record(s.question, s.answer))
        if s.truth["format"] == "yesno":
            asked, trend, answer = reply.split()
            assert asked in s.question and trend == s.truth["trend"] and answer == s.answer
            assert (answer == "yes") == (asked == trend)
        else:
            value, letter = reply.split()
            assert letter == s.answer and f"{letter}. {value}" in s.question and value == s.truth["trend"]
        seen.add(s.truth["format"])
    assert seen == {"yesno", "letter"}


def test_grounding_reply_names_the_grid_cell_of_the_target_then_its_box():
    cells = set()
    for seed in range(40):
        s = generate("ground", "natural", {}, random.Random(seed), 64)
        reply = worked_reply(s, _record(s.question, s.answer))
        x1, y1, x2, y2 = s.truth["target"]["box"]   # pixels of the 64-pixel picture
        row, col = ("top", "middle", "bottom")[(y1 + y2) * 3 // 128], ("left", "centre", "right")[(x1 + x2) * 3 // 128]
        assert reply == f"{row} {col} {s.answer}"
        cells.add((row, col))
    assert len(cells) == 9   # every cell of the 3x3 grid is named
    assert box_cell((0.0, 0.0, 0.2, 0.2)) == "top left" and box_cell((0.5, 0.7, 1.0, 1.0)) == "bottom right"
    assert box_cell((0.3, 0.3, 0.4, 0.4)) == "middle centre"   # centre 0.35: the middle third


def test_worked_records_rewrite_only_the_answer_of_records_built_by_the_kit():
    built = make_samples("mllmcl_dcl", FIN, "train", 0, 6, 0, 32)
    records = [record for record, _ in built]
    samples = [draw_sample("mllmcl_dcl", FIN, *sample_index(r["id"]), 0, 32) for r in records]
    worked = worked_records(records, samples)
    for before, after, s in zip(records, worked, samples):
        assert after["conversations"][0] == before["conversations"][0] and after["id"] == before["id"]
        assert after["conversations"][1]["value"] == worked_reply(s, before)
        assert after["conversations"][1]["value"].split()[-1] == before["conversations"][1]["value"]
    assert records[0]["conversations"][1]["value"] == samples[0].answer   # the input records are not changed


def test_worked_records_refuse_data_that_its_seed_does_not_draw_and_multi_turn_records():
    record, _ = make_samples("mllmcl_acl", MATH, "train", 3, 4, 0, 32)[0]
    sample = draw_sample("mllmcl_acl", MATH, "train", 3, 0, 32)
    stale = {**record, "conversations": [record["conversations"][0], {"from": "gpt", "value": "99"}]}
    with pytest.raises(DataError, match=r"'Math_train_00003'.*not the one its seed draws.*rebuild"):
        worked_records([stale], [sample])
    with pytest.raises(DataError, match="one question and one answer turn"):
        worked_records([{**record, "conversations": record["conversations"] * 2}], [sample])


def test_sample_index_reads_back_sample_id_and_names_a_foreign_id():
    assert sample_index(sample_id("Fin", "test", 12)) == ("test", 12)
    assert sample_index(sample_id("my_task", "train", 0)) == ("train", 0)
    with pytest.raises(DataError, match="not a synthetic sample id"):
        sample_index("vqa_12345")


def test_only_math_chart_trend_and_grounding_tasks_have_a_worked_form():
    check_worked(FIN)
    check_worked(MATH)
    check_worked({t.name: t for t in load_suite("ucit").tasks}["CLEVR"])
    check_worked(GROUNDING)
    sci = {t.name: t for t in load_suite("mllmcl_dcl").tasks}["Sci"]
    with pytest.raises(ConfigError, match="no worked reply.*--answer-form value_letter"):
        check_worked(sci)
    ocr = {t.name: t for t in load_suite("mllmcl_acl").tasks}["OCR"]
    with pytest.raises(ConfigError, match="task OCR .*no worked reply"):
        check_worked(ocr)


def test_worked_agreement_matches_hand_counts_for_math():
    truth = _sample({"a": 3, "op": "+", "b": 4, "result": 7})
    replies = ["3+4=7",     # read right, result follows
               "3+5=8",     # misread, but the result follows what it wrote
               "3+4=9",     # read right, wrong sum
               "7"]         # no working at all
    result = worked_agreement([""] * 4, replies, [truth] * 4)
    assert result == dict(zip(AGREEMENT_COLUMNS, (50.0, 50.0)))


def test_worked_agreement_matches_hand_counts_for_yes_no_and_letter_charts():
    yesno = _sample({"format": "yesno", "asked": "down", "trend": "up"}, "no")
    letter = _sample({"format": "letter", "trend": "up"}, "B")
    prompt = "How does the stock price move?\nA. down\nB. up\nC. flat"
    replies = [("", "down up no", yesno),    # read right, answer follows
               ("", "down down no", yesno),  # trend misread, and "no" does not follow two equal directions
               ("", "no", yesno),            # no working
               (prompt, "up B", letter),     # read right, letter names it
               (prompt, "up A", letter)]     # read right, letter names another option
    result = worked_agreement(*zip(*replies))
    assert result == dict(zip(AGREEMENT_COLUMNS, (60.0, 40.0)))
    with pytest.raises(ValueError, match="equally many"):
        worked_agreement([""], [], [yesno])


def test_worked_agreement_matches_hand_counts_for_grounding():
    target = _sample({"expr": "the red car", "target": {}}, "[0.10, 0.65, 0.30, 0.90]")
    replies = ["bottom left [0.10, 0.65, 0.30, 0.90]",    # read right, box in the named cell
               "bottom left [0.40, 0.65, 0.60, 0.90]",    # read right, box in another cell
               "top right [0.70, 0.05, 0.95, 0.30]",      # misread, but the box follows what it named
               "[0.10, 0.65, 0.30, 0.90]",                # no cell named
               "bottom left"]                             # read right, but no box
    result = worked_agreement([""] * 5, replies, [target] * 5)
    assert result == dict(zip(AGREEMENT_COLUMNS, (60.0, 40.0)))


def test_final_answer_scores_the_last_step_with_the_inner_scorer():
    result = score("final_answer", ["down up no", "up B", "yes", ""], ["no", "B", "no", "no"],
                   scorer="exact_match_nospace")
    assert result.per_sample == [1.0, 1.0, 0.0, 0.0] and result.failed_indices == [3]
    result = score("final_answer", ["3+4=7", "3+4=8", "12"], ["7", "7", "12"], scorer="numeric", after="=")
    assert result.per_sample == [1.0, 0.0, 1.0]
    result = score("final_answer", ["top left [0.1, 0.1, 0.3, 0.3]", "top left [0.5, 0.5, 0.9, 0.9]",
                                    "[0.1, 0.1, 0.3, 0.3]", "top left"],
                   [[0.1, 0.1, 0.3, 0.3]] * 4, scorer="iou", after="[")
    assert result.per_sample == [1.0, 0.0, 1.0, 0.0] and result.failed_indices == [3]
    with pytest.raises(ConfigError, match="corpus-level"):
        score("final_answer", ["a cat"], [["a cat"]], scorer="cider")
