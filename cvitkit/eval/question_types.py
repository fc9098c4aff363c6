"""Scores per question type: which questions of a task a model answers, and which it only guesses.

A task's score mixes question types that need different skills: DCL Med asks an object's colour, its
kind, whether one is present and how many there are. A model that reads colours and not kinds can clear
a task's bar on its colour questions alone, and a blind model (``--blind``) answers every yes/no
question as well as one that sees. The per-type score,

.. math:: \\mathrm{score}_t(q) = \\frac{1}{|T_q|} \\sum_{i \\in T_q} s_i,
          \\qquad T_q = \\{i : \\mathrm{type}(i) = q\\},

with :math:`s_i` the task scorer's score of test question :math:`i` (saved with every prediction), says
which skill a score comes from. Compared with the same type's score of the blind probe, it says which
types the pictures help with.

The type is what the synthetic generator recorded when it drew the question (its ``truth``): the
question template of VQA and relation tasks (``colour``, ``count``, ``kind``, ``presence``, ``side``,
``vertical``, ``which``, ``yesno``, ...), the operation of CLEVR-Math (``add``, ``sub_colour``,
``sub_kind``) and the answer format of chart questions (``yesno``, ``letter``). Tasks whose questions
are of one type (classification, OCR, captions, multiple choice) have none.
"""

from __future__ import annotations

from collections import defaultdict

#: Fields of a synthetic sample's ``truth`` that name its question type, in the order they are looked up.
TYPE_FIELDS = ("question", "operation", "format")


def question_type(truth: dict | None) -> str | None:
    """The question type a synthetic sample's ``truth`` records, or None when it records none."""
    for field in TYPE_FIELDS:
        value = (truth or {}).get(field)
        if isinstance(value, str) and value:
            return value
    return None


def scores_by_type(predictions: list[dict], types: dict[str, str | None]) -> dict[str, dict]:
    """``{type: {"questions": n, "score": mean score in percent}}`` of the saved ``predictions`` (rows with
    ``question_id`` and the scorer's ``score`` in [0, 1]), grouped by ``types`` (question id -> type).

    Returns ``{}`` when no question has a type. A prediction whose question id ``types`` does not know is
    an error: the predictions and the drawn test set must be the same questions."""
    grouped: dict[str, list[float]] = defaultdict(list)
    for row in predictions:
        qid = row["question_id"]
        if qid not in types:
            raise KeyError(f"prediction of question {qid!r} has no drawn test sample: the predictions and the "
                           "test set are not the same questions.")
        if types[qid] is not None:
            grouped[types[qid]].append(float(row["score"]))
    return {t: {"questions": len(s), "score": 100 * sum(s) / len(s)} for t, s in sorted(grouped.items())}
