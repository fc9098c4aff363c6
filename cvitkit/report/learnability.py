"""Is each task learned at all? Fine-tune accuracy against the task's chance level, one row per task.

A continual-learning table only says something about a task if the model learns it in the first place:
forgetting a task that was never above chance costs nothing. For every task of a task-incremental
suite this table puts side by side

* **chance**: the majority-answer baseline scored with the task's scorer (:mod:`cvitkit.eval.chance`);
* **best constant**: the best score of one answer repeated for every question, over the 20 most
  frequent training answers: what a model that collapsed to one answer can reach at most;
* **question prior**: the question-only baseline, each test question answered with the most frequent
  training answer to the same question text: what a model that reads the question but not the image
  gets (:func:`cvitkit.eval.chance.question_prior_score`);
* **question-type prior**: the same blind model by question *type*, the question with its answer words
  masked (``is the _ above or below the _``), for tasks whose questions are written from templates and
  rarely repeat word for word (:func:`cvitkit.eval.chance.question_type_prior_score`);
* **LoRA-FT R_tt**: the score right after training on the task in the sequential LoRA-FT run (the
  plasticity entry of the accuracy matrix, whose mean is MFT);
* **multitask**: the joint-training score, where the suite has that run;
* **best R_tt**: the highest right-after-training score over every run of the suite;
* **LoRA-FT 3 epochs R_tt** and **learned at 3 epochs**, where the suite has the ``lora_ft__e3`` run: the
  same sequential run with three times the steps per task, the *steps* knob of "what would it take"
  applied to the whole sequence rather than to one task alone (:mod:`cvitkit.probe`);
* **LoRA-FT answers** (and **3 epochs answers**), where the runs' answer profiles are given: at
  :math:`R_{t,t}`, the number of distinct answers to the task's test questions, then the most frequent
  answer and its share. ``1 · "b" 100%`` is a collapse onto one answer, whatever its score.

A task counts as *learned* when LoRA-FT's :math:`R_{t,t}` is at least ``margin`` points above the
*bar*, the highest of the best constant and the two question priors (default 10: with 100 test samples a
score's standard error is at most 5 points, so 10 is two of them): only a model that reads the image
clears it. The best constant is never below chance (the majority answer is one of the candidates).
"""

from __future__ import annotations

import pandas as pd

from cvitkit.eval.chance import BAR_COLUMNS, REFERENCE_COLUMNS, image_free_references

#: Points above the bar (best constant answer or a question prior) that count as clearly learned.
LEARNED_MARGIN = 10.0
#: The sequential LoRA-FT run with three epochs per task (``configs/methods/lora_ft.yaml``).
LONGER_RUN = "lora_ft__e3"


def diagonal(matrix: pd.DataFrame, task: str) -> float | None:
    """:math:`R_{t,t}` (the row named after ``task``); a one-row matrix (joint training) gives its only row."""
    if task not in matrix.columns:
        return None
    if task in matrix.index:
        value = matrix.loc[task, task]
    elif len(matrix) == 1:
        value = matrix.iloc[0][task]
    else:
        return None
    return None if pd.isna(value) else float(value)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def learnability_table(suite, train: dict[str, list[dict]], test: dict[str, list[dict]], runs: dict,
                       margin: float = LEARNED_MARGIN, answers: dict | None = None) -> pd.DataFrame:
    """One row per task of ``suite``: the image-free references (chance, best constant, the two question priors), LoRA-FT's and multitask's scores, the best run,
    and whether the task is learned. ``runs`` maps run id (``<suite>/<method>[__variant]``) to its accuracy
    matrix; ``answers``, optional, maps run id to its answer profiles (``answers.json`` of a run summary:
    ``{stage name: {task: profile}}``, :func:`cvitkit.runner.answer_profiles`)."""
    by_method = {run_id.split("/", 1)[1]: m for run_id, m in runs.items() if m is not None}
    profiles = {run_id.split("/", 1)[1]: a for run_id, a in (answers or {}).items() if a}
    trained = {k: m for k, m in by_method.items() if not k.startswith("zero_shot")}
    rows = []
    for task in suite.tasks:
        ref = image_free_references(task, train[task.name], test[task.name])
        bar = ref["bar"]
        lora = diagonal(by_method["lora_ft"], task.name) if "lora_ft" in by_method else None
        joint = diagonal(by_method["multitask"], task.name) if "multitask" in by_method else None
        longer = diagonal(by_method[LONGER_RUN], task.name) if LONGER_RUN in by_method else None
        scores = {k: diagonal(m, task.name) for k, m in trained.items()}
        scores = {k: v for k, v in scores.items() if v is not None}
        best = max(scores, key=scores.get) if scores else None
        rows.append({"task": task.name, "scorer": task.scorer,
                     **{k: round(ref[k], 1) for k in REFERENCE_COLUMNS},
                     "LoRA-FT R_tt": _round(lora), "multitask": _round(joint),
                     "best R_tt": _round(scores.get(best)), "best run": best or "",
                     "LoRA-FT - bar": None if lora is None else round(lora - bar, 1),
                     "learned": _learned(lora, bar, margin)})
        if "lora_ft" in profiles:
            rows[-1]["LoRA-FT answers"] = _answers(profiles["lora_ft"], task.name)
        if LONGER_RUN in by_method:
            rows[-1].update({"LoRA-FT 3 epochs R_tt": _round(longer),
                             "learned at 3 epochs": _learned(longer, bar, margin)})
            if LONGER_RUN in profiles:
                rows[-1]["3 epochs answers"] = _answers(profiles[LONGER_RUN], task.name)
    return pd.DataFrame(rows).set_index("task")


def table_bar(table: pd.DataFrame) -> pd.Series:
    """Each task's bar read back from a table's own columns: the highest of ``BAR_COLUMNS`` it has (tables
    written before a reference existed have fewer)."""
    return table[[c for c in BAR_COLUMNS if c in table]].max(axis=1)


def _answers(profiles: dict, task: str) -> str:
    """``distinct · "top answer" share`` of the answers to ``task`` right after training on it."""
    profile = (profiles.get(task) or {}).get(task)
    if not profile or not profile.get("n"):
        return ""
    top = str(profile["top"])
    top = top if len(top) <= 14 else top[:13] + "…"
    return f'{profile["distinct"]} · "{top}" {profile["top_share"]:.0%}'


def _learned(score: float | None, bar: float, margin: float) -> str:
    return "" if score is None else ("yes" if score - bar >= margin else "no")

