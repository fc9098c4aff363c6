"""How measured cells are computed: column factories over a run's summary files.

Task-incremental metrics are recomputed from ``matrix.csv`` with :mod:`cvitkit.eval.metrics`
(``protocols.md`` §2), so a table never depends on how a run's ``metrics.json`` spelled its keys:

* ``R[t, i]`` = score on task ``i`` after stage ``t`` (rows of ``matrix.csv`` without ``initial``);
* ACC = Last = MFN = mean of the last row; MAA = mean over stages of the mean over tasks seen so far;
  MFT = mean of the diagonal; BWT = mean over tasks 1..T-1 of ``R[T, i] - R[i, i]``.

A single-stage run (joint multitask training, zero-shot) has one row: its final scores are that row,
MFN is the row mean, MAA follows the run's ``metrics.json`` (the runner writes the final mean there),
MFT and BWT are undefined.

Streaming metrics (StrCVIT, §2.1) are computed over the first N chunks of the run's stream.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cvitkit.report.results import Run, same_task
from cvitkit.report.specs import Cell, CellContext, ColumnSpec

__all__ = [
    "FORMULAS", "STRCVIT_AP_TASKS", "adapter_params", "config_value", "expert_usage_summary", "final_score",
    "ms_per_step", "params_ratio", "rank_summary", "routing_metric", "score_after_own_stage", "statistic",
    "stream_metric", "stream_summary", "stream_task_ap", "ti_metric", "ti_summary",
]

#: The StrCVIT release's fixed AP task set (``new_calculate_ap_proxy.py``; GQA and ChartQA excluded).
STRCVIT_AP_TASKS = ("AD", "Fin", "RS", "ImageNet", "VQAv2", "Places365", "TextCaps", "OCRVQA", "Grounding")

FORMULAS = {
    "MFN": "MFN = (1/T) sum_i R[T,i] (mean of the last row of the accuracy matrix)",
    "MAA": "MAA = (1/T) sum_t (1/t) sum_{i<=t} R[t,i] (mean over stages of the mean over tasks seen so far)",
    "MFT": "MFT = (1/T) sum_i R[i,i] (mean of the diagonal: accuracy right after learning each task)",
    "BWT": "BWT = (1/(T-1)) sum_{i<T} (R[T,i] - R[i,i]) (negative = forgetting)",
    "Forgetting": "F = (1/(T-1)) sum_{i<T} max_{i<=t<T} (R[t,i] - R[T,i])",
    "MAP": "MAP_N = (1/N) sum_{t<=N} AP_t, AP_t = mean over the AP task set of the scores after chunk t",
    "MAF": "MAF_N = (1/(N-1)) sum_{2<=t<=N} mean_k (max_{t'<t} s[t',k] - s[t,k]) over the AP task set, not clipped",
}


# --------------------------------------------------------------------------------------------------
# Task-incremental summaries
# --------------------------------------------------------------------------------------------------

def _single_stage(run: Run) -> bool:
    trained = run.trained
    return len(trained) == 1 and trained.shape[1] > 1


def ti_summary(run: Run) -> tuple[dict[str, float | None] | None, str]:
    """``({MFN, MAA, MFT, BWT, Forgetting}, "")`` from the run's matrix, or ``(None, reason)``."""
    if "ti" in run.cache:
        return run.cache["ti"]
    from cvitkit.errors import DataError
    from cvitkit.eval import metrics as M

    trained = run.trained
    rows, cols = trained.shape
    if _single_stage(run):
        final = trained.iloc[-1]
        if final.isna().any():
            result = (None, "single-stage run with unevaluated tasks")
        else:
            mean = float(final.mean())
            maa = run.metrics.get("MAA")
            result = ({"MFN": mean, "MAA": float(maa) if isinstance(maa, (int, float)) else mean, "MFT": None,
                       "BWT": None, "Forgetting": None}, "")
    elif rows != cols:
        result = (None, f"incomplete run ({rows} of {cols} stages)")
    else:
        try:
            values = M.summarise(trained.to_numpy(dtype=float))
            result = ({k: (None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v))
                       for k, v in values.items() if k != "T"}, "")
        except DataError as exc:
            result = (None, f"matrix incomplete: {exc}")
    run.cache["ti"] = result
    return result


def final_score(task: str) -> ColumnSpec:
    """The task's score after the last stage, R[T, i] (a single-stage run: its only row)."""
    def compute(ctx: CellContext) -> Cell:
        trained = ctx.run.trained
        column = ctx.run.column(task)
        if column is None:
            return Cell(None, f"task {task} not in the run's matrix")
        if not _single_stage(ctx.run) and len(trained) < trained.shape[1]:
            return Cell(None, f"incomplete run ({len(trained)} of {trained.shape[1]} stages)")
        value = trained.iloc[-1][column]
        return Cell(None, f"{task} not evaluated at the last stage") if np.isnan(value) else Cell(float(value))

    return ColumnSpec(task, compute, f"R[T, {task}]: score on {task} after the last stage (last row of matrix.csv)")


def score_after_own_stage(task: str, label: str | None = None) -> ColumnSpec:
    """The task's score right after the stage that learned it, R[i, i] (matrix row named ``task``)."""
    def compute(ctx: CellContext) -> Cell:
        column = ctx.run.column(task)
        trained = ctx.run.trained
        if column is None:
            return Cell(None, f"task {task} not in the run's matrix")
        position = list(trained.columns).index(column)
        if position >= len(trained):
            return Cell(None, f"stage {position + 1} not run yet")
        value = trained.iloc[position][column]
        return Cell(None, "not evaluated") if np.isnan(value) else Cell(float(value))

    return ColumnSpec(label or f"{task} (after its own task)", compute,
                      f"R[i, i] for i = {task}: score right after training on {task}", reported=None)


def ti_metric(key: str, label: str | None = None, reported: str | None = "") -> ColumnSpec:
    """A task-incremental metric (``MFN``, ``MAA``, ``MFT``, ``BWT``, ``Forgetting``) from the matrix."""
    fmt = "points" if key in ("BWT", "Forgetting") else "score"

    def compute(ctx: CellContext) -> Cell:
        values, reason = ti_summary(ctx.run)
        if values is None:
            return Cell(None, reason)
        value = values.get(key)
        if value is None:
            return Cell(None, f"{key} undefined for a single-stage run" if _single_stage(ctx.run) else f"{key} undefined")
        return Cell(value)

    name = label or key
    formula = FORMULAS[key] + ("" if name == key else f" ({name} = {key})")
    return ColumnSpec(name, compute, formula, fmt=fmt, reported=reported)


# --------------------------------------------------------------------------------------------------
# Streams (StrCVIT)
# --------------------------------------------------------------------------------------------------

def stream_summary(run: Run, chunks: int, ap_tasks: Sequence[str] = STRCVIT_AP_TASKS):
    """``({AP: [...], MAP, MAF, task_ap: {task: mean over chunks}}, "")`` over chunks 1..N, or ``(None, reason)``."""
    key = ("stream", chunks, tuple(ap_tasks))
    if key in run.cache:
        return run.cache[key]
    from cvitkit.errors import DataError
    from cvitkit.eval import metrics as M

    trained = run.trained
    if len(trained) < chunks:
        result = (None, f"the stream has {len(trained)} chunks (< {chunks})")
    else:
        window = trained.iloc[:chunks]
        columns = [run.column(t) for t in ap_tasks]
        missing = [t for t, c in zip(ap_tasks, columns) if c is None]
        task_ap = {c: (float(np.nanmean(window[c])) if window[c].notna().any() else None) for c in window.columns}
        if missing:
            result = ({"AP": None, "MAP": None, "MAF": None, "task_ap": task_ap},
                      f"AP task(s) {', '.join(missing)} not in the run's matrix")
        else:
            try:
                sub = window[columns]
                result = ({"AP": [float(v) for v in M.average_performance(sub)], "MAP": float(M.map_(sub)),
                           "MAF": float(M.maf(sub)), "task_ap": task_ap}, "")
            except DataError as exc:
                result = ({"AP": None, "MAP": None, "MAF": None, "task_ap": task_ap}, f"matrix incomplete: {exc}")
    run.cache[key] = result
    return result


def stream_task_ap(task: str) -> ColumnSpec:
    """A task's score averaged over chunks 1..N (the kit's reading of a per-task "AP")."""
    def compute(ctx: CellContext) -> Cell:
        n = int(ctx.param("chunks"))
        column = ctx.run.column(task)
        if column is None:
            return Cell(None, f"task {task} not in the run's matrix")
        values, reason = stream_summary(ctx.run, n)
        if values is None:
            return Cell(None, reason)
        value = values["task_ap"].get(column)
        return Cell(None, f"{task} never evaluated") if value is None else Cell(value)

    return ColumnSpec(task, compute, f"mean over chunks 1..N of the score on {task} (per-task AP; interpretation)")


def stream_metric(key: str, chunks: int | None = None, label: str | None = None) -> ColumnSpec:
    """``MAP`` or ``MAF`` over chunks 1..N (N = ``chunks`` or the row/table parameter ``chunks``)."""
    fmt = "points" if key == "MAF" else "score"

    def compute(ctx: CellContext) -> Cell:
        n = int(chunks or ctx.param("chunks"))
        values, reason = stream_summary(ctx.run, n)
        if values is None or values.get(key) is None:
            return Cell(None, reason or f"{key} undefined")
        return Cell(values[key])

    name = label or key
    return ColumnSpec(name, compute, FORMULAS[key].replace("N", str(chunks)) if chunks else FORMULAS[key], fmt=fmt,
                      reported="" if name == key else None)


# --------------------------------------------------------------------------------------------------
# Parameters and timing (summary.json)
# --------------------------------------------------------------------------------------------------

def adapter_params(which: str = "total", label: str = "adapter params", reported: str | None = None) -> ColumnSpec:
    """``summary.json`` ``adapter_parameters.adapter_<which>`` (``total`` or ``trainable`` at the last stage)."""
    def compute(ctx: CellContext) -> Cell:
        value = (ctx.run.summary.get("adapter_parameters") or {}).get(f"adapter_{which}")
        return Cell(None, "no adapter parameters recorded") if value is None else Cell(int(value))

    text = ("all adapter parameters the method adds (summary.json adapter_parameters.adapter_total)" if which == "total"
            else "adapter parameters trainable in the last stage (summary.json adapter_parameters.adapter_trainable)")
    return ColumnSpec(label, compute, text, fmt="count", reported=reported)


def ms_per_step(label: str = "ms per step", reported: str | None = None) -> ColumnSpec:
    """Median seconds per optimizer step × 1000 (``summary.json`` ``step_seconds_median``)."""
    def compute(ctx: CellContext) -> Cell:
        value = ctx.run.summary.get("step_seconds_median")
        return Cell(None, "no step timing recorded") if value is None else Cell(float(value) * 1000.0)

    return ColumnSpec(label, compute, "median wall time of one optimizer step x 1000 (summary.json step_seconds_median), "
                                      "on the device in the run's provenance", fmt="ms", reported=reported)


def params_ratio(reference_run: str, label: str, which: str = "total") -> ColumnSpec:
    """This run's adapter parameters divided by those of ``reference_run``."""
    def compute(ctx: CellContext) -> Cell:
        ref = ctx.store.run(reference_run)
        if not ref.exists:
            return Cell(None, f"reference run {reference_run} {ref.status}")
        mine = (ctx.run.summary.get("adapter_parameters") or {}).get(f"adapter_{which}")
        theirs = (ref.summary.get("adapter_parameters") or {}).get(f"adapter_{which}")
        if not mine or not theirs:
            return Cell(None, "no adapter parameters recorded")
        return Cell(float(mine) / float(theirs))

    return ColumnSpec(label, compute, f"adapter_{which} of the row's run / adapter_{which} of {reference_run}",
                      fmt="ratio", reported=None)


# --------------------------------------------------------------------------------------------------
# Statistics (statistics.json)
# --------------------------------------------------------------------------------------------------

_OVERALL_KEYS = ("overall", "all", "mean", "total")


def _pick(value: Any, task: str | None) -> tuple[float | None, str]:
    """A number from a statistic that is a number or a mapping task → number (+ an overall key)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (float(value), "") if task is None else (None, "recorded as one overall value only")
    if not isinstance(value, Mapping):
        return None, "unrecognised statistic format"
    if task is None:
        for key in value:
            if str(key).lower() in _OVERALL_KEYS and isinstance(value[key], (int, float)):
                return float(value[key]), ""
        numbers = [float(v) for v in value.values() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        return (float(np.mean(numbers)), "") if numbers else (None, "no values")
    for key, item in value.items():
        if same_task(key, task) and isinstance(item, (int, float)):
            return float(item), ""
    return None, f"no value for {task}"


def statistic(key: str, label: str, task: str | None = None, reported: str | None = None,
              formula: str = "") -> ColumnSpec:
    """``statistics.json`` value ``key`` at the last stage that recorded it (a task's entry, or the
    overall value: an ``overall`` entry, else the unweighted mean over tasks)."""
    def compute(ctx: CellContext) -> Cell:
        value = ctx.run.last_statistic(key)
        if value is None:
            return Cell(None, f"no '{key}' in statistics.json")
        number, reason = _pick(value, task)
        return Cell(number, reason)

    text = formula or (f"statistics.json '{key}' at the last stage" + (f", entry {task}" if task else ", overall"))
    return ColumnSpec(label, compute, text, fmt="score", reported=reported)


def _usage(value: Any) -> dict[str, np.ndarray]:
    out = {}
    if isinstance(value, Mapping):
        for layer, fractions in value.items():
            if isinstance(fractions, Sequence) and fractions and all(isinstance(f, (int, float)) for f in fractions):
                array = np.asarray(fractions, dtype=float)
                if array.sum() > 0:
                    out[str(layer)] = array / array.sum()
    return out


def expert_usage_summary(run: Run) -> tuple[dict | None, str]:
    """Routing summary of ``expert_usage`` ({layer: [fraction per expert]}) over the run's stages.

    ``entropy``: mean over layers of H(p)/ln(E) at the last stage (1 = uniform use of the experts,
    0 = one expert); ``max_share``: mean over layers of the largest expert fraction at the last stage;
    ``drift``: mean over consecutive stages and layers of the total-variation distance
    0.5·Σ|p_t − p_{t−1}| (how much routing moves from one stage to the next).
    """
    stages = [(s, _usage(v)) for s, v in run.stage_statistics("expert_usage")]
    stages = [(s, u) for s, u in stages if u]
    if not stages:
        return None, "no expert_usage in statistics.json"
    last = stages[-1][1]
    entropies, shares = [], []
    for p in last.values():
        if p.size > 1:
            nz = p[p > 0]
            entropies.append(float(-(nz * np.log(nz)).sum() / math.log(p.size)))
        shares.append(float(p.max()))
    drifts = []
    for (_, prev), (_, cur) in zip(stages, stages[1:]):
        common = [k for k in cur if k in prev and prev[k].shape == cur[k].shape]
        if common:
            drifts.append(float(np.mean([0.5 * np.abs(cur[k] - prev[k]).sum() for k in common])))
    return {"entropy": float(np.mean(entropies)) if entropies else None, "max_share": float(np.mean(shares)),
            "drift": float(np.mean(drifts)) if drifts else None, "layers": len(last),
            "experts": int(max(p.size for p in last.values()))}, ""


def routing_metric(kind: str, label: str) -> ColumnSpec:
    formulas = {
        "entropy": "mean over layers of H(p)/ln(E), p = fraction of gate mass per expert at the last stage "
                   "(1 = all experts used equally)",
        "max_share": "mean over layers of the largest expert's fraction of gate mass at the last stage",
        "drift": "mean over consecutive stages and layers of 0.5*sum|p_t - p_(t-1)| (routing change per chunk)",
        "experts": "experts per adapted layer",
    }

    def compute(ctx: CellContext) -> Cell:
        values, reason = expert_usage_summary(ctx.run)
        if values is None:
            return Cell(None, reason)
        value = values.get(kind)
        return Cell(None, "needs at least two stages") if value is None else Cell(value)

    return ColumnSpec(label, compute, formulas[kind], fmt="int" if kind == "experts" else "fraction", reported=None)


def _layer_ranks(value: Any, expert: int) -> list[float]:
    out = []
    if isinstance(value, Mapping):
        for ranks in value.values():
            if isinstance(ranks, (int, float)) and not isinstance(ranks, bool):
                out.append(float(ranks))
            elif isinstance(ranks, Sequence) and len(ranks) > expert:
                item = ranks[expert]
                if isinstance(item, (int, float)):
                    out.append(float(item))
    return out


def rank_summary(kind: str, label: str) -> ColumnSpec:
    """Per-layer ranks of one CRAM expert (row parameter ``stage``, 0-based): mean/min/max over layers.

    ``ranks`` is read as {layer: [rank of expert 0, 1, ...]} at the last stage, or {layer: rank of the
    expert created at that stage} per stage.
    """
    def compute(ctx: CellContext) -> Cell:
        stage = int(ctx.param("stage"))
        history = ctx.run.stage_statistics("ranks")
        if not history:
            return Cell(None, "no 'ranks' in statistics.json")
        last = history[-1][1]
        values = []
        if isinstance(last, Mapping) and any(isinstance(v, Sequence) for v in last.values()):
            values = _layer_ranks(last, stage)
        elif stage < len(history):
            values = _layer_ranks(history[stage][1], stage)
        if not values:
            return Cell(None, f"no ranks recorded for expert {stage + 1}")
        return Cell({"mean": float(np.mean(values)), "min": min(values), "max": max(values),
                     "layers": len(values)}[kind])

    text = {"mean": "mean over adapted layers of the expert's rank", "min": "smallest rank over layers",
            "max": "largest rank over layers", "layers": "adapted layers with a recorded rank"}[kind]
    return ColumnSpec(label, compute, text + " (statistics.json 'ranks')", fmt="score" if kind == "mean" else "int",
                      reported=None)


# --------------------------------------------------------------------------------------------------
# Configuration (config.json)
# --------------------------------------------------------------------------------------------------

def _find_key(data: Any, keys: Sequence[str]) -> Any:
    if isinstance(data, Mapping):
        for key in keys:
            if key in data and not isinstance(data[key], Mapping):
                return data[key]
        for value in data.values():
            found = _find_key(value, keys)
            if found is not None:
                return found
    return None


def config_value(label: str = "value", reported: str | None = "") -> ColumnSpec:
    """The kit's setting for the row (row parameter ``keys``: candidate names in ``method_config``)."""
    def compute(ctx: CellContext) -> Cell:
        keys = ctx.param("keys") or ()
        if not keys:
            return Cell(None, "no kit setting corresponds")
        value = _find_key(ctx.run.config.get("method_config") or {}, keys)
        if value is None:
            value = _find_key(ctx.run.config.get("train") or {}, keys)
        if value is None:
            return Cell(None, f"none of {', '.join(keys)} in config.json method_config / train")
        return Cell(", ".join(map(str, value)) if isinstance(value, list) else value)

    return ColumnSpec(label, compute, "the value in the run's config.json method_config, else train (first of the "
                                      "row's candidate keys found)",
                      fmt="text", reported=reported, origin="kit config")
