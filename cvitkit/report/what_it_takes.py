r"""What it takes to learn each task: every setting tried, in one row per task.

The learnability table (:mod:`cvitkit.report.learnability`) scores each task inside the continual
runs; the probe tables (:mod:`cvitkit.probe`) score it trained alone with more steps, more data or a
larger model. Issue-level question: *which knob, if any, gets the tiny model over the bar?* This table
answers it per task by collecting every measured setting:

* ``in sequence, 1 epoch`` and ``in sequence, 3 epochs``: LoRA-FT's :math:`R_{t,t}` in the ``lora_ft``
  and ``lora_ft__e3`` runs, against the learnability table's bar;
* ``alone, <model>, <n> epochs[, <m> samples][, value-first | worked | scene-first replies]``: each probe
  row, against the bar of its own training set (a larger set has its own best constant and question
  priors); value-first replies (``circle B``, :mod:`cvitkit.data.option_answers`), worked replies
  (``3+4=7``, ``down up no``, :mod:`cvitkit.data.worked_answers`) and scene-first grounding replies
  (:mod:`cvitkit.data.scene_answers`) are scored on their final answer against the same bar as the
  task's own replies.

A probe repeated with other training seeds (``--seed``) is one setting whose score is the mean over its
seeds, :math:`\bar s = \frac{1}{K}\sum_k s_k`, and whose label lists them (``mean of 2 seeds: 45, 38``):
the best of several seeds would be a lucky draw, not what the setting gives.

A probe run with blank images (``--blind``: every picture one grey image) is the question-only model
of its setting. It is not a setting of its own: it raises the bar of the setting it repeats, which
learns the task only if it also clears the blind score by ``margin``,
:math:`s - \max(\mathrm{bar}, s_\mathrm{blind}) \ge \mathrm{margin}`; its label says
``blind: <score>``. ``in sequence, <n> epochs`` is held to the blind probe of the same model
(``sequence_model``, the profile's), epochs, training set and replies, trained alone: the same steps on
the task's own records, from the base model instead of the adapter the earlier tasks left.

Zero-shot probe rows (``--method zero_shot``) train nothing: they are the base model's own score, kept in
the probe table as the reference a tuned score is read against, and left out here, where a setting is
what training it takes.

A setting *learns* the task when its score is at least ``margin`` points above its bar (the bar is the
highest of the best constant answer and the two question priors, :mod:`cvitkit.eval.chance`, and the
blind score where there is one). Columns: the bar, the number of settings tried, the best score with
its setting and its distance to the bar, every setting that learned the task (``none`` when none did)
and the blind probes (``blank images``: setting and score).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cvitkit.report.learnability import LEARNED_MARGIN, table_bar
from cvitkit.report.render import write_frame

#: What each probe answer form adds to its setting's label.
ANSWER_FORM_LABELS = {"value_letter": ", value-first replies", "worked": ", worked replies",
                      "scene": ", scene-first replies"}


#: The continual runs' settings: label, learnability column, epochs per task.
SEQUENCE_SETTINGS = (("in sequence, 1 epoch", "LoRA-FT R_tt", 1.0), ("in sequence, 3 epochs", "LoRA-FT 3 epochs R_tt", 3.0))


def _epochs_label(epochs: float) -> str:
    return f"{epochs:g} epoch{'' if epochs == 1 else 's'}"


def _sequence_settings(row: pd.Series, bar: float, blind: dict[str, float],
                       sequence_model: str | None) -> list[tuple[str, float, float]]:
    """``(label, score, score - bar)`` of the continual runs' :math:`R_{t,t}` found in a learnability row,
    the bar raised to the blind score of the same model and epochs alone (``blind``: label -> score)."""
    found = []
    for label, column, epochs in SEQUENCE_SETTINGS:
        if column in row and pd.notna(row[column]):
            score, above = float(row[column]), float(row[column]) - bar
            matched = blind.get(f"alone, {sequence_model}, {_epochs_label(epochs)}") if sequence_model else None
            if matched is not None:
                above = min(above, score - matched)
                label += f" (blind alone: {matched:g})"
            found.append((label, score, above))
    return found


def _probe_label(row: pd.Series, default_samples: int | None) -> str:
    label = f"alone, {row['model']}, {_epochs_label(float(row['epochs']))}"
    if row.get("method", "lora_ft") != "lora_ft":
        label += f", {row['method']}"
    if default_samples is not None and int(row["train samples"]) != default_samples:
        label += f", {int(row['train samples']):,} samples"
    label += ANSWER_FORM_LABELS.get(row.get("answer form", "letter"), "")
    return label


def _grouped(probes: pd.DataFrame, default_samples: int | None) -> dict[str, list[tuple[float, float]]]:
    """``{setting label: [(score, score - bar) of each of its rows (seeds)]}``."""
    grouped: dict[str, list[tuple[float, float]]] = {}
    for _, probe in probes.iterrows():
        grouped.setdefault(_probe_label(probe, default_samples), []).append(
            (float(probe["score"]), float(probe["score - bar"])))
    return grouped


def _blank(probes: pd.DataFrame) -> pd.Series:
    """Which probe rows had blank images (none in tables written before blind probes)."""
    return probes["images"].eq("blank") if "images" in probes else pd.Series(False, index=probes.index)


def _blind_scores(probes: pd.DataFrame, default_samples: int | None) -> dict[str, float]:
    """``{setting label: mean score over its seeds}`` of the blind probes."""
    return {label: sum(s for s, _ in runs) / len(runs)
            for label, runs in _grouped(probes[_blank(probes)], default_samples).items()}


def _probe_settings(probes: pd.DataFrame, default_samples: int | None,
                    blind: dict[str, float]) -> list[tuple[str, float, float]]:
    """``(label, score, score - bar)`` per probe setting with pictures, the rows of one setting (its seeds)
    averaged, the bar raised to the setting's blind score where it has one (``blind``, :func:`_blind_scores`)."""
    settings = []
    for label, runs in _grouped(probes[~_blank(probes)], default_samples).items():
        score, above = sum(s for s, _ in runs) / len(runs), sum(a for _, a in runs) / len(runs)
        notes = [f"mean of {len(runs)} seeds: {', '.join(f'{s:g}' for s, _ in runs)}"] if len(runs) > 1 else []
        if label in blind:
            above = min(above, score - blind[label])
            notes.append(f"blind: {blind[label]:g}")
        settings.append((label + (f" ({'; '.join(notes)})" if notes else ""), score, above))
    return settings


def what_it_takes(learnability: pd.DataFrame, probes: pd.DataFrame | None = None,
                  margin: float = LEARNED_MARGIN, default_samples: int | None = None,
                  sequence_model: str | None = None) -> pd.DataFrame:
    """One row per task of ``learnability`` (indexed by task, as written by ``03_evaluate``).

    ``probes`` are the suite's probe rows (``<suite>_probe.csv``), optional; ``default_samples`` is the
    profile's training-set size per task, so that only probes on another size name theirs;
    ``sequence_model`` is the continual runs' model as probe rows name it (the profile's preset), whose
    blind probes alone hold the in-sequence settings."""
    rows, bars = [], table_bar(learnability)
    if probes is not None and "method" in probes:
        probes = probes[probes["method"] != "zero_shot"]
    no_probes = probes is None or not len(probes)
    for task, row in learnability.iterrows():
        bar = float(bars[task])
        mine = None if no_probes else probes[probes["task"] == task]
        blind = {} if no_probes else _blind_scores(mine, default_samples)
        settings = _sequence_settings(row, bar, blind, sequence_model)
        if not no_probes:
            settings += _probe_settings(mine, default_samples, blind)
        best = max(settings, key=lambda s: s[2]) if settings else None
        learned = [label for label, _, above in settings if above >= margin]
        rows.append({"task": task, "scorer": row["scorer"], "bar": round(bar, 1), "settings tried": len(settings),
                     "best score": None if best is None else round(best[1], 1),
                     "best - bar": None if best is None else round(best[2], 1),
                     "best setting": "" if best is None else best[0],
                     "learned by": "; ".join(learned) if learned else "none",
                     "blank images": "; ".join(f"{label}: {score:g}" for label, score in blind.items())})
    return pd.DataFrame(rows).set_index("task")


def write_what_it_takes(tables: str | Path, suite: str, default_samples: int | None = None,
                        margin: float = LEARNED_MARGIN, sequence_model: str | None = None) -> pd.DataFrame | None:
    """Build the table from ``<tables>/<suite>_learnability.csv`` and ``<suite>_probe.csv`` (if any) and
    write ``<suite>_what_it_takes.{csv,md}``; ``None`` (nothing written) without a learnability table."""
    tables = Path(tables)
    source = tables / f"{suite}_learnability.csv"
    if not source.is_file():
        return None
    probe_file = tables / f"{suite}_probe.csv"
    probes = pd.read_csv(probe_file) if probe_file.is_file() else None
    table = what_it_takes(pd.read_csv(source, index_col="task"), probes, margin, default_samples, sequence_model)
    write_frame(table, tables, f"{suite}_what_it_takes")
    return table
