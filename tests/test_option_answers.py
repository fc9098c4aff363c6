"""Value-first multiple-choice replies: rewriting, splitting, and the two-part check."""

import pytest

from cvitkit.data.option_answers import options_of, split_reply, value_first, value_letter_agreement
from cvitkit.errors import DataError
from cvitkit.eval.text_scorers import option_letter

PROMPT = "<image>\nWhich shape is in the diagram?\nA. star\nB. light blue\nC. 3\nAnswer with the option's letter."


def _record(answer="B", prompt=PROMPT):
    return {"id": "Sci_train_00007", "image": "x.png",
            "conversations": [{"from": "human", "value": prompt}, {"from": "gpt", "value": answer}]}


def test_options_are_read_from_the_letter_lines_only():
    assert options_of(PROMPT) == {"A": "star", "B": "light blue", "C": "3"}


@pytest.mark.parametrize("answer, expected", [("B", "light blue B"), ("C", "3 C"), (" A.", "star A")])
def test_value_first_names_the_options_value_before_its_letter(answer, expected):
    record = _record(answer)
    rewritten = value_first(record)
    assert rewritten["conversations"][1]["value"] == expected
    assert rewritten["conversations"][0] == record["conversations"][0] and rewritten["image"] == "x.png"
    assert record["conversations"][1]["value"] == answer  # the input record is not changed


def test_value_first_rejects_answers_that_are_not_an_option_letter_and_names_the_record():
    with pytest.raises(DataError, match=r"Sci_train_00007.*'D'.*\(A, B, C\).*Fix"):
        value_first(_record("D"))
    with pytest.raises(DataError, match="no 'A. value' lines"):
        value_first(_record("B", prompt="<image>\nWhat is it?"))
    multi = _record()
    multi["conversations"] *= 2
    with pytest.raises(DataError, match="one question and one answer turn"):
        value_first(multi)


@pytest.mark.parametrize("reply, parts", [
    ("circle B", ("circle", "B")), ("light blue A.", ("light blue", "A")), ("3 (c)", ("3", "C")),
    ("B", ("", "B")), ("circle", ("circle", None)), ("", ("", None)),
])
def test_split_reply(reply, parts):
    assert split_reply(reply) == parts


def test_agreement_counts_the_vision_step_and_the_pointer_step_apart():
    replies = ["light blue B",  # right value, its own letter: both
               "star B",        # wrong value, letter of another option: neither
               "star A",        # wrong value, but the letter names it: pointer only
               "light blue C"]  # right value, wrong letter: vision only
    result = value_letter_agreement([PROMPT] * 4, replies, ["B"] * 4)
    assert result == {"reading right": 50.0, "answer follows its reading": 50.0}
    with pytest.raises(ValueError, match="equally many"):
        value_letter_agreement([PROMPT], [], ["B"])


@pytest.mark.parametrize("reply", ["light blue B", "3 B", "B"])
def test_the_option_letter_scorer_reads_a_value_first_reply_as_its_letter(reply):
    assert option_letter(reply, "B") == 1.0
    assert option_letter(reply, "A") == 0.0
