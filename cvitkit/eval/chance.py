"""Chance level of a task: the score of answering every test question with the most frequent training answer.

"Well above chance" needs a chance level per task, and uniform guessing is the wrong one: a task whose
answers are 34 % "unanswerable" gives 34 to a model that never looks at the image. The majority-answer
baseline is what a model gets from the answer prior alone,

.. math:: \\mathrm{chance}(t) = \\mathrm{score}_t\\big(\\{\\hat a\\}_{i=1}^{n},\\ \\{a_i\\}_{i=1}^{n}\\big),
          \\qquad \\hat a = \\arg\\max_a \\#\\{\\text{training answers} = a\\}

scored with the task's own scorer (so boxes, points, captions and multi-reference VQA answers get the
same treatment as model predictions).

A model that collapses to one answer is not measured by that baseline alone: on a 100-question test set
the frequency of each answer varies by several points, and the collapsed answer need not be the training
majority (CoIN ScienceQA in the mini run: the majority training letter scores 27 on the test set, "B"
scores 43, and LoRA-FT answered "B" to every question). The *best constant answer* bounds every such
model from above,

.. math:: \\mathrm{const}(t) = \\max_{a \\in A_k} \\mathrm{score}_t\\big(\\{a\\}_{i=1}^{n},\\ \\{a_i\\}_{i=1}^{n}\\big),
          \\qquad A_k = \\text{the } k \\text{ most frequent training answers},

It uses the test answers to pick the constant, so it is a ceiling for answer-prior models, not an
estimate of one.

A model that reads the question but not the image can beat every constant: MLLM-CL Fin mixes
multiple-choice and yes/no questions, and answering "A" to the first kind and "yes" to the second
scores 11 points over the best single answer without a look at the chart. The *question prior* is
that blind model (the question-only baseline of VQA): each test question gets the most frequent
training answer among training questions with the same text (image token removed, case and spacing
normalised), or the training majority when no training question has that text,

.. math:: \\mathrm{blind}(t) = \\mathrm{score}_t\\big(\\{\\hat a(q_i)\\}_{i=1}^{n},\\ \\{a_i\\}_{i=1}^{n}\\big),
          \\qquad \\hat a(q) = \\arg\\max_a \\#\\{\\text{training pairs } (q, a)\\}.

Questions written from templates defeat that exact-text match: MLLM-CL AD asks "Is the truck above
or below the cone?" with dozens of object pairs, so most test questions were never asked in training
word for word, and the question prior falls back to the majority. A blind model still learns the
template: answer "below" to every above-or-below question, "no" to every yes/no one. The
*question-type prior* (the "per Q-type prior" of the VQA paper, Antol et al., 2015) is that model:
every word that makes up a short training answer (at most ``MAX_SLOT_WORDS`` words: the objects,
sides, colours, yes/no, digits, letters the task answers with) is replaced in the question by a slot,
and each test question gets the most frequent training answer of its *type* (the question with its
slots), or the training majority for a type never seen,

.. math:: \\mathrm{type}(t) = \\mathrm{score}_t\\big(\\{\\hat a(\\tau(q_i))\\}_{i=1}^{n},\\ \\{a_i\\}_{i=1}^{n}\\big),
          \\qquad \\hat a(\\tau) = \\arg\\max_a \\#\\{\\text{training pairs } (q, a) : \\tau(q) = \\tau\\},

where :math:`\\tau(q)` masks the answer words of :math:`q`. It uses the training set only. Neither prior
bounds the other: merging questions into a type can lose what a single question text says.

The bar a task has to clear to count as *learned* is the highest of the three (``BAR_COLUMNS``): only a
model that reads the image can beat them all.
"""

from __future__ import annotations

import re
from collections import Counter

from cvitkit.errors import DataError

#: The image-free references of a task, as the learnability and probe tables name their columns.
REFERENCE_COLUMNS = ("chance", "best constant", "question prior", "question-type prior")
#: The references whose highest is the bar a learned task clears (chance is never above the best constant).
BAR_COLUMNS = ("best constant", "question prior", "question-type prior")
#: Training answers of at most this many words give the question-type prior its slot words; longer ones
#: (captions) would mask whole questions.
MAX_SLOT_WORDS = 3
_WORD = re.compile(r"[a-z0-9]+")


def majority_answer(train_records: list[dict], source: str = "training records") -> str:
    """The most frequent answer (last assistant turn) of ``train_records``; ties go to the first seen."""
    return Counter(training_answers(train_records, source)).most_common(1)[0][0]


def training_answers(train_records: list[dict], source: str = "training records") -> list[str]:
    """The answer (last assistant turn, stripped) of every record of ``train_records``, in order."""
    answers = []
    for index, record in enumerate(train_records):
        turns = [t for t in record.get("conversations", []) if t.get("from") == "gpt"]
        if not turns:
            raise DataError(f"{source}: record {index} (id {record.get('id')!r}) has no assistant ('gpt') turn; "
                            "a training record needs the answer as its last 'gpt' turn.")
        answers.append(turns[-1]["value"].strip())
    if not answers:
        raise DataError(f"{source}: no training records, so there is no majority answer.")
    return answers


def question_key(text: str) -> str:
    """A question as a blind model sees it: without the image token, lower-cased, spacing collapsed."""
    return " ".join(text.replace("<image>", " ").lower().split())


def _training_question(record: dict) -> str:
    turns = [t for t in record.get("conversations", []) if t.get("from") == "human"]
    return question_key(turns[-1]["value"]) if turns else ""


def _prior_score(task, train_records: list[dict], test_records: list[dict], answers: list[str], key) -> float:
    """Each test question answered with the most frequent training answer of its ``key`` (a function of
    the normalised question text), the training majority for a key never seen; scored by the task."""
    from cvitkit.eval.scorers import score

    by_key: dict[str, Counter] = {}
    for record, answer in zip(train_records, answers):
        by_key.setdefault(key(_training_question(record)), Counter())[answer] += 1
    fallback = Counter(answers).most_common(1)[0][0]
    keys = (key(question_key(str(r.get("text", "")))) for r in test_records)
    guesses = [by_key[k].most_common(1)[0][0] if k in by_key else fallback for k in keys]
    result = score(task.scorer, guesses, [r["answer"] for r in test_records], **(task.scorer_params or {}))
    return float(result.score)


def question_prior_score(task, train_records: list[dict], test_records: list[dict]) -> float:
    """The question-only baseline of ``task``: each test question answered with the most frequent training
    answer to the same question text (the training majority for a question never seen in training),
    scored with the task's scorer (see the module notes)."""
    answers = training_answers(train_records, f"task {task.name}")
    return _prior_score(task, train_records, test_records, answers, key=lambda q: q)


def answer_words(answers: list[str], max_words: int = MAX_SLOT_WORDS) -> set[str]:
    """The words (lower-case letters and digits) of every answer of at most ``max_words`` words."""
    words: set[str] = set()
    for answer in answers:
        tokens = _WORD.findall(answer.lower())
        if len(tokens) <= max_words:
            words.update(tokens)
    return words


def question_type(text: str, slots: set[str]) -> str:
    """``text`` as the question-type prior sees it: its words, each of ``slots`` replaced by ``_``
    (``is the _ above or below the _``)."""
    return " ".join("_" if w in slots else w for w in _WORD.findall(question_key(text)))


def question_type_prior_score(task, train_records: list[dict], test_records: list[dict]) -> float:
    """The per-question-type baseline of ``task``: each test question answered with the most frequent
    training answer of its type (the question with its answer words masked, :func:`question_type`), the
    training majority for a type never seen in training, scored with the task's scorer (see the module
    notes)."""
    answers = training_answers(train_records, f"task {task.name}")
    slots = answer_words(answers)
    return _prior_score(task, train_records, test_records, answers, key=lambda q: question_type(q, slots))


def chance_score(task, train_records: list[dict], test_records: list[dict]) -> float:
    """The majority-answer baseline of ``task`` on ``test_records``, scored with the task's scorer."""
    from cvitkit.eval.scorers import score

    guess = majority_answer(train_records, f"task {task.name}")
    result = score(task.scorer, [guess] * len(test_records), [r["answer"] for r in test_records],
                   **(task.scorer_params or {}))
    return float(result.score)


def best_constant_score(task, train_records: list[dict], test_records: list[dict], candidates: int = 20) -> float:
    """The best test score of one answer given to every question, over the ``candidates`` most frequent
    training answers, each scored with the task's scorer (the learned-or-not bar, see the module notes)."""
    from cvitkit.eval.scorers import score

    if candidates <= 0:
        raise ValueError(f"candidates must be a positive number of answers, got {candidates}.")
    references = [r["answer"] for r in test_records]
    pool = [a for a, _ in Counter(training_answers(train_records, f"task {task.name}")).most_common(candidates)]
    return max(float(score(task.scorer, [a] * len(references), references, **(task.scorer_params or {})).score)
               for a in pool)


def image_free_references(task, train_records: list[dict], test_records: list[dict]) -> dict[str, float]:
    """The scores of ``task`` that need no image (``REFERENCE_COLUMNS``) and the learned-or-not ``bar``
    (the highest of ``BAR_COLUMNS``, see the module notes): what the learnability table and the probes
    put beside a fine-tune score."""
    refs = {"chance": chance_score(task, train_records, test_records),
            "best constant": best_constant_score(task, train_records, test_records),
            "question prior": question_prior_score(task, train_records, test_records),
            "question-type prior": question_type_prior_score(task, train_records, test_records)}
    return {**refs, "bar": max(refs[c] for c in BAR_COLUMNS)}
