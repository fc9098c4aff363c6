"""Value-first answers for multiple-choice tasks: ``circle B`` instead of ``B``.

A multiple-choice reply by letter asks the model to find what the picture shows, then find the option
that says it and emit *that option's* letter. The tiny language models of the ``mini`` profile do not
learn the second step (the option pointer, :mod:`cvitkit.option_pointer`) from letter replies; when the
reply names the value first, the value is the current token and the option equal to it one look-up
away, and the pointer can form (on some tasks and seeds, not all: ``results/mini/tables/*_probe.md``). This module rewrites the training answers of a multiple-choice task into
that form, for the learnability probe (``python -m cvitkit.probe --answer-form value_letter``), and
splits such replies back into their two parts so that each can be checked on its own:

* *reading right*: the reply's value is the correct option's value (the vision step);
* *answer follows its reading*: the reply's letter is the option equal to the value the reply itself
  wrote (the pointer step), right or wrong.

These are the multiple-choice case of the worked replies of :mod:`cvitkit.data.worked_answers`, and the
two columns have the same names there.

The letter-parsing scorer (``option_letter``: the first single-letter word) reads ``circle B`` as
``B``; values are never single letters in the synthetic families (counts are digits).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from cvitkit.errors import DataError

#: The two parts :func:`value_letter_agreement` (and ``worked_agreement``) return, in percent.
AGREEMENT_COLUMNS = ("reading right", "answer follows its reading")

_OPTION_LINE = re.compile(r"^([A-Z])\. (.+?)\s*$", flags=re.M)


def options_of(prompt: str) -> dict[str, str]:
    """The ``A. value`` lines of a multiple-choice prompt, as ``{"A": "value", ...}``."""
    return dict(_OPTION_LINE.findall(prompt))


def value_first(record: dict) -> dict:
    """A copy of a training record whose letter answer ``B`` reads ``<value of option B> B``."""
    turns = record.get("conversations") or []
    where = f"record {record.get('id', '?')!r}"
    if len(turns) != 2 or turns[0].get("from") != "human" or turns[1].get("from") != "gpt":
        raise DataError(f"{where}: value-first answers need one question and one answer turn, got "
                        f"{[t.get('from') for t in turns]}. Fix: use them on single-turn multiple-choice tasks only.")
    letter = turns[1]["value"].strip().strip(".()")
    options = options_of(turns[0]["value"])
    if letter not in options:
        found = ", ".join(options) or "none: no 'A. value' lines"
        raise DataError(f"{where}: the answer {turns[1]['value']!r} is not one of the prompt's option letters "
                        f"({found}). Fix: value-first answers apply to "
                        "tasks answered with an option letter (scorer option_letter or a letter exact match).")
    answer = {**turns[1], "value": f"{options[letter]} {letter}"}
    return {**record, "conversations": [turns[0], answer]}


def split_reply(reply: str) -> tuple[str, str | None]:
    """``"circle B"`` → ``("circle", "B")``; a reply whose last word is not one letter → ``(reply, None)``.

    The last word counts as a letter under the scorer's own rule (:func:`parse_option_letter`), so the
    pointer column reads the letter the way ``option_letter`` scores it."""
    from cvitkit.eval.text_scorers import parse_option_letter

    words = reply.split()
    letter = parse_option_letter(words[-1]) if words else None
    if letter is not None:
        return " ".join(words[:-1]), letter
    return reply.strip(), None


def value_letter_agreement(prompts: Sequence[str], replies: Sequence[str], answers: Sequence[str]) -> dict:
    """Percent of value-first replies whose value is right and whose letter names their own value.

    For each reply with options :math:`o` (from its prompt), value :math:`v` and letter :math:`l`, and the
    correct letter :math:`a`: *reading right* is :math:`v = o_a`; *answer follows its reading* is
    :math:`o_l = v` (the pointer followed, whatever the value). A model with the pointer but weak vision
    scores high on the second and low on the first; the product is roughly its accuracy.
    """
    if not (len(prompts) == len(replies) == len(answers)) or not prompts:
        raise ValueError(f"need equally many prompts, replies and answers (at least one), got "
                         f"{len(prompts)}, {len(replies)} and {len(answers)}.")
    value_right = pointer = 0
    for prompt, reply, answer in zip(prompts, replies, answers):
        options = options_of(prompt)
        value, letter = split_reply(reply)
        value_right += value == options.get(str(answer).strip())
        pointer += letter is not None and options.get(letter) == value
    n = len(prompts)
    return dict(zip(AGREEMENT_COLUMNS, (100 * value_right / n, 100 * pointer / n)))
