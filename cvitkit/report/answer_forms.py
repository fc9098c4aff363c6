"""Answer-form table: instruction following kept or lost along a sequence of tasks.

From each run's answer profiles (``answers.json``; ``form_match`` of
:func:`cvitkit.eval.evaluate.answer_profile`, the share of a task's test answers given in the form its
reference has: a letter, a number, coordinates, a short answer or a sentence) this table gives, per run,
the share for every task after the *last* stage and two means over the tasks:

.. math:: \\mathrm{F}_{own} = \\frac1T \\sum_i f_{i,i},\\qquad \\mathrm{F}_{end} = \\frac1T \\sum_i f_{T,i},
          \\qquad \\mathrm{F}_{drop} = \\mathrm{F}_{own} - \\mathrm{F}_{end}

with :math:`f_{t,i}` the form share of task i after stage t and :math:`f_{i,i}` right after its own stage
(a single-stage run, zero-shot or multitask, has :math:`f_{i,i} = f_{T,i}`). A BWT made of a large
:math:`\\mathrm{F}_{drop}` is forgetting of *how* to answer (a caption to a letter question); with the
form kept, what is lost is what the model sees or knows. Streams have no own stage per task: only the
end shares and :math:`\\mathrm{F}_{end}`.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

#: Columns of :func:`form_table` that summarise a run rather than name a task.
SUMMARY_COLUMNS = ("F_end", "F_own", "F_drop")


def _share(answers: Mapping, stage: str, task: str) -> float | None:
    value = answers.get(stage, {}).get(task, {}).get("form_match")
    return None if value is None else 100 * float(value)


def form_table(matrices: Mapping[str, pd.DataFrame], answers: Mapping[str, Mapping]) -> pd.DataFrame:
    """One row per run with answer profiles: ``<task>`` (form share after the last stage, %), ``F_end``
    and, where every task has its own stage (task-incremental runs), ``F_own`` and ``F_drop``.

    ``matrices`` maps run id to its accuracy matrix (rows: stage names in order; columns: tasks);
    ``answers`` maps run id to its ``answers.json`` (``{stage: {task: profile}}``). Runs saved before
    profiles had ``form_match`` are left out."""
    rows = []
    for run_id, matrix in matrices.items():
        profiles = answers.get(run_id) or {}
        stages = [str(s) for s in matrix.index]
        if not stages or not profiles:
            continue
        last, tasks = stages[-1], [str(t) for t in matrix.columns]
        end = {t: _share(profiles, last, t) for t in tasks}
        if any(v is None for v in end.values()):
            continue
        row = {"run": run_id, **end, "F_end": sum(end.values()) / len(end)}
        if len(stages) == 1 or all(t in stages for t in tasks):
            own = [_share(profiles, t if len(stages) > 1 else last, t) for t in tasks]
            if all(v is not None for v in own):
                row["F_own"] = sum(own) / len(own)
                row["F_drop"] = row["F_own"] - row["F_end"]
        rows.append(row)
    return pd.DataFrame(rows).set_index("run") if rows else pd.DataFrame()
