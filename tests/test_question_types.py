"""Scores per question type: the type a sample's truth records, and the mean score of each type."""

from __future__ import annotations

import pytest

from cvitkit.eval.question_types import question_type, scores_by_type


@pytest.mark.parametrize("truth, expected", [
    ({"question": "colour", "format": "yesno"}, "colour"),   # the question template comes first
    ({"operation": "sub_kind"}, "sub_kind"),
    ({"format": "letter", "trend": "up"}, "letter"),
    ({"label": "dog"}, None),
    (None, None),
])
def test_the_type_is_the_first_field_of_the_truth_that_names_one(truth, expected):
    assert question_type(truth) == expected


def test_scores_by_type_are_the_mean_score_of_each_types_questions():
    predictions = [{"question_id": "q1", "score": 1.0}, {"question_id": "q2", "score": 0.0},
                   {"question_id": "q3", "score": 1.0}, {"question_id": "q4", "score": 0.5},
                   {"question_id": "q5", "score": 1.0}]
    types = {"q1": "kind", "q2": "kind", "q3": "kind", "q4": "side", "q5": None}
    assert scores_by_type(predictions, types) == {
        "kind": {"questions": 3, "score": pytest.approx(200 / 3)},
        "side": {"questions": 1, "score": 50.0}}
    assert scores_by_type(predictions, dict.fromkeys(types)) == {}


def test_a_prediction_without_a_drawn_sample_is_named():
    with pytest.raises(KeyError, match="'q9'"):
        scores_by_type([{"question_id": "q9", "score": 1.0}], {"q1": "kind"})
