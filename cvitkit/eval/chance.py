"""Chance level of a task: the score of answering every test question with the most frequent training answer.

"Well above chance" needs a chance level per task, and uniform guessing is the wrong one: a task whose
answers are 34 % "unanswerable" gives 34 to a model that never looks at the image. The majority-answer
baseline is what a model gets from the answer prior alone,

.. math:: \\mathrm{chance}(t) = \\mathrm{score}_t\\big(\\{\\hat a\\}_{i=1}^{n},\\ \\{a_i\\}_{i=1}^{n}\\big),
          \\qquad \\hat a = \\arg\\max_a \\#\\{\\text{training answers} = a\\}

scored with the task's own scorer (so boxes, points, captions and multi-reference VQA answers get the
same treatment as model predictions). A task is *learned* when its fine-tune accuracy clearly exceeds it.
"""

from __future__ import annotations

from collections import Counter

from cvitkit.errors import DataError


def majority_answer(train_records: list[dict], source: str = "training records") -> str:
    """The most frequent answer (last assistant turn) of ``train_records``; ties go to the first seen."""
    answers = []
    for index, record in enumerate(train_records):
        turns = [t for t in record.get("conversations", []) if t.get("from") == "gpt"]
        if not turns:
            raise DataError(f"{source}: record {index} (id {record.get('id')!r}) has no assistant ('gpt') turn; "
                            "a training record needs the answer as its last 'gpt' turn.")
        answers.append(turns[-1]["value"].strip())
    if not answers:
        raise DataError(f"{source}: no training records, so there is no majority answer.")
    return Counter(answers).most_common(1)[0][0]


def chance_score(task, train_records: list[dict], test_records: list[dict]) -> float:
    """The majority-answer baseline of ``task`` on ``test_records``, scored with the task's scorer."""
    from cvitkit.eval.scorers import score

    guess = majority_answer(train_records, f"task {task.name}")
    result = score(task.scorer, [guess] * len(test_records), [r["answer"] for r in test_records],
                   **(task.scorer_params or {}))
    return float(result.score)
