"""Continual-learning metrics over an accuracy matrix (numpy), as defined in ``protocols.md`` §2.

Task-incremental benchmarks (CoIN, MLLM-CL, UCIT, TriGap) use the accuracy matrix ``R`` (T × T):
``R[t, i]`` = score (0–100) on task ``i`` after training stage ``t`` — rows are time, columns are
tasks, NaN where a cell was not evaluated. Formulas below use 1-based indices as in the protocol;
the code is 0-based. Only the cells a metric needs must be present (the lower triangle with the
diagonal for most; the first super-diagonal for FWT); a missing needed cell raises
:class:`~cvitkit.errors.DataError` naming it.

Streaming benchmarks (StrCVIT) use a score matrix ``S`` (N chunks × M tasks): ``S[t, k]`` = score on
task ``k`` after chunk ``t`` (§2.1).

Every matrix argument may be a numpy array, a nested list, a pandas DataFrame (task names as
columns) or an :class:`AccuracyMatrix`. pandas is imported only by the functions that need it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cvitkit.errors import DataError

__all__ = [
    "AccuracyMatrix", "acc", "average_performance", "bwt", "forgetting", "fwt", "last", "maa", "maf", "map_",
    "mean_average_forgetting", "mean_average_performance", "mfn", "mft", "summarise", "summarise_stream",
]


# --------------------------------------------------------------------------------------------------
# Input handling
# --------------------------------------------------------------------------------------------------

def _columns_of(matrix: Any) -> list[str] | None:
    if isinstance(matrix, AccuracyMatrix):
        return list(matrix.tasks)
    columns = getattr(matrix, "columns", None)
    return [str(c) for c in columns] if columns is not None else None


def _as_2d(matrix: Any, what: str) -> np.ndarray:
    if isinstance(matrix, AccuracyMatrix):
        array = np.array(matrix.values, dtype=float)
    elif hasattr(matrix, "to_numpy"):
        array = matrix.to_numpy(dtype=float)
    else:
        try:
            array = np.array(matrix, dtype=float)
        except (TypeError, ValueError) as exc:
            raise DataError(f"{what}: could not read the matrix as numbers ({exc}).") from exc
    if array.ndim != 2 or array.size == 0:
        raise DataError(f"{what}: expected a non-empty 2-D matrix, got shape {array.shape}.")
    return array


def _square(matrix: Any, what: str) -> np.ndarray:
    array = _as_2d(matrix, what)
    rows, cols = array.shape
    if rows != cols:
        raise DataError(
            f"{what}: the accuracy matrix must be square (T stages × T tasks), got {rows} × {cols}. "
            "Rows are stages (time), columns are tasks; for streams (chunks × tasks) use the streaming metrics."
        )
    return array


def _need(array: np.ndarray, cells: Sequence[tuple[int, int]], what: str) -> None:
    missing = [(t, i) for t, i in cells if math.isnan(array[t, i])]
    if missing:
        shown = ", ".join(f"R[{t + 1},{i + 1}]" for t, i in missing[:8])
        more = f" and {len(missing) - 8} more" if len(missing) > 8 else ""
        raise DataError(f"{what}: needed cells are missing (NaN): {shown}{more} (1-based stage, task). "
                        "Evaluate those tasks at those stages first.")


def _lower_cells(size: int) -> list[tuple[int, int]]:
    return [(t, i) for t in range(size) for i in range(t + 1)]


# --------------------------------------------------------------------------------------------------
# Task-incremental metrics
# --------------------------------------------------------------------------------------------------

def mfn(R: Any) -> float:
    """Mean final accuracy (= ACC = Last): the mean of the last row.

        MFN = (1/T) sum_{i=1..T} R[T, i]

    Needs every cell of the last row.
    """
    array = _square(R, "mfn")
    size = array.shape[0]
    _need(array, [(size - 1, i) for i in range(size)], "mfn")
    return float(array[-1].mean())


#: Aliases used by BranchLoRA ("ACC") and CRAM ("Last").
acc = mfn
last = mfn


def maa(R: Any) -> float:
    """Mean average accuracy: the mean over stages of the mean over the tasks seen so far.

        MAA = (1/T) sum_{t=1..T} [ (1/t) sum_{i=1..t} R[t, i] ]

    Needs the lower triangle including the diagonal.
    """
    array = _square(R, "maa")
    size = array.shape[0]
    _need(array, _lower_cells(size), "maa")
    return float(np.mean([array[t, : t + 1].mean() for t in range(size)]))


def mft(R: Any) -> float:
    """Mean fine-tune accuracy (plasticity): the mean of the diagonal.

        MFT = (1/T) sum_{i=1..T} R[i, i]
    """
    array = _square(R, "mft")
    size = array.shape[0]
    _need(array, [(i, i) for i in range(size)], "mft")
    return float(np.mean(np.diag(array)))


def bwt(R: Any) -> float:
    """Backward transfer (negative = forgetting).

        BWT = (1/(T-1)) sum_{i=1..T-1} (R[T, i] - R[i, i])

    With T = 1 there is no earlier task to look back on; the result is NaN (not an error) so that a
    one-task run can still be summarised.
    """
    array = _square(R, "bwt")
    size = array.shape[0]
    if size < 2:
        return float("nan")
    cells = [(size - 1, i) for i in range(size - 1)] + [(i, i) for i in range(size - 1)]
    _need(array, cells, "bwt")
    return float(np.mean([array[-1, i] - array[i, i] for i in range(size - 1)]))


def forgetting(R: Any) -> float:
    """Average maximum forgetting over the tasks before the last.

        F = (1/(T-1)) sum_{i=1..T-1} max_{t in {i..T-1}} (R[t, i] - R[T, i])

    The maximum runs over the stages from the one that learned task ``i`` to the one before the
    last, so a single value can be negative when a task improved afterwards (it is not clipped).
    T = 1 gives NaN (nothing can have been forgotten). Needs the lower triangle with the diagonal.
    """
    array = _square(R, "forgetting")
    size = array.shape[0]
    if size < 2:
        return float("nan")
    _need(array, _lower_cells(size), "forgetting")
    return float(np.mean([array[i: size - 1, i].max() - array[-1, i] for i in range(size - 1)]))


def _vector(values: Any, columns: list[str] | None, size: int, what: str) -> np.ndarray:
    if isinstance(values, Mapping):
        if columns is None:
            raise DataError(f"{what}: a mapping of task → score needs a matrix with task names "
                            "(a DataFrame or AccuracyMatrix); pass a list in task order instead.")
        missing = [c for c in columns if c not in values]
        if missing:
            raise DataError(f"{what}: no zero-shot score for task(s) {', '.join(missing)}.")
        values = [values[c] for c in columns]
    vector = np.array(values, dtype=float).reshape(-1)
    if vector.shape[0] != size:
        raise DataError(f"{what}: expected {size} zero-shot scores (one per task), got {vector.shape[0]}.")
    return vector


def fwt(R: Any, zero_shot: Any) -> float:
    """Forward transfer, MCIT usage: the score on a task just before training on it, minus its zero-shot score.

        FWT = (1/(T-1)) sum_{i=2..T} (R[i-1, i] - R0[i])

    ``zero_shot`` holds R0, the base model's score on each task before any training: a sequence in
    task order (length T; the first entry is not used) or a mapping task → score when ``R`` carries
    task names. Needs the first super-diagonal ``R[i-1, i]`` (each task evaluated one stage before it
    is learned). T = 1 gives NaN.
    """
    array = _square(R, "fwt")
    size = array.shape[0]
    base = _vector(zero_shot, _columns_of(R), size, "fwt")
    if size < 2:
        return float("nan")
    _need(array, [(i - 1, i) for i in range(1, size)], "fwt")
    if np.isnan(base[1:]).any():
        raise DataError("fwt: zero-shot scores contain NaN for tasks 2..T.")
    return float(np.mean([array[i - 1, i] - base[i] for i in range(1, size)]))


def summarise(R: Any, zero_shot: Any = None) -> dict[str, float]:
    """All task-incremental metrics: ``T``, ``MFN``, ``MAA``, ``MFT``, ``BWT``, ``Forgetting`` (+ ``FWT``).

    ``FWT`` is present only when ``zero_shot`` is given. BWT and Forgetting are NaN for T = 1.
    """
    array = _square(R, "summarise")
    out: dict[str, float] = {
        "T": array.shape[0], "MFN": mfn(R), "MAA": maa(R), "MFT": mft(R), "BWT": bwt(R), "Forgetting": forgetting(R),
    }
    if zero_shot is not None:
        out["FWT"] = fwt(R, zero_shot)
    return out


# --------------------------------------------------------------------------------------------------
# Streaming metrics (StrCVIT)
# --------------------------------------------------------------------------------------------------

def _task_indices(tasks: Any, columns: list[str] | None, width: int, what: str) -> list[int]:
    if tasks is None:
        return list(range(width))
    if isinstance(tasks, (str, int)):
        tasks = [tasks]
    out = []
    for task in tasks:
        if isinstance(task, (int, np.integer)) and not isinstance(task, bool):
            if not 0 <= int(task) < width:
                raise DataError(f"{what}: task index {task} out of range 0..{width - 1}.")
            out.append(int(task))
        elif isinstance(task, str):
            if columns is None:
                raise DataError(f"{what}: task names need a matrix with named columns (DataFrame or "
                                "AccuracyMatrix); give column indices for a plain array.")
            if task not in columns:
                raise DataError(f"{what}: unknown task '{task}'. Columns: {', '.join(columns)}.")
            out.append(columns.index(task))
        else:
            raise DataError(f"{what}: tasks must be column names or indices, got {task!r}.")
    if not out:
        raise DataError(f"{what}: the task subset is empty.")
    if len(set(out)) != len(out):
        raise DataError(f"{what}: the task subset lists a task twice.")
    return out


def _first_seen(array: np.ndarray, idx: list[int], first_seen: Any, columns: list[str] | None,
                what: str) -> np.ndarray:
    """First chunk (0-based) of each selected task; ``inf`` for a task never seen."""
    if first_seen is None:  # infer: first chunk with a score
        out = []
        for k in idx:
            rows = np.flatnonzero(~np.isnan(array[:, k]))
            out.append(float(rows[0]) if rows.size else math.inf)
        return np.array(out)
    if isinstance(first_seen, Mapping):
        if columns is None:
            raise DataError(f"{what}: first_seen as a mapping needs a matrix with named columns.")
        names = [columns[k] for k in idx]
        missing = [n for n in names if n not in first_seen]
        if missing:
            raise DataError(f"{what}: first_seen has no entry for task(s) {', '.join(missing)} "
                            "(use None for a task that never appears in the stream).")
        values = [first_seen[n] for n in names]
    else:
        values = list(first_seen)
        if len(values) != array.shape[1]:
            raise DataError(f"{what}: first_seen needs one chunk index per column ({array.shape[1]}), "
                            f"got {len(values)}.")
        values = [values[k] for k in idx]
    return np.array([math.inf if v is None else float(v) for v in values])


def _stream_setup(S: Any, tasks: Any, seen_only: bool, first_seen: Any, what: str):
    array = _as_2d(S, what)
    columns = _columns_of(S)
    idx = _task_indices(tasks, columns, array.shape[1], what)
    sub = array[:, idx]
    chunks = np.arange(sub.shape[0])[:, None]
    if seen_only:
        seen_from = _first_seen(array, idx, first_seen, columns, what)
        seen = chunks >= seen_from[None, :]
    else:
        seen = np.ones_like(sub, dtype=bool)
    holes = seen & np.isnan(sub)
    if holes.any():
        t, k = np.argwhere(holes)[0]
        name = columns[idx[k]] if columns else f"column {idx[k]}"
        raise DataError(f"{what}: missing score (NaN) for task {name} after chunk {t + 1} "
                        f"({int(holes.sum())} missing cell(s) in all). Every averaged task needs a score "
                        "after every chunk" + (" from the chunk it first appears in." if seen_only else
                                               "; pass seen_only=True to average only tasks seen so far."))
    return sub, seen


def average_performance(S: Any, tasks: Any = None, *, seen_only: bool = False, first_seen: Any = None) -> np.ndarray:
    """AP after every chunk: the mean score over the task set K.

        AP_t = (1/|K|) sum_{k in K} s[t, k]

    ``tasks`` selects K (column names or indices; default: all columns). The StrCVIT release uses a
    fixed K of nine tasks (AD, Fin, RS, ImageNet, VQAv2, Places, TextCaps, OCRVQA, Grounding).
    ``seen_only=True`` averages, at chunk t, only the tasks of K seen at or before t (K_t); when a task
    first appears comes from ``first_seen`` (one 0-based chunk index per column, or a mapping task →
    index, ``None`` = never) or, if that is not given, from the first chunk with a non-NaN score.
    AP_t is NaN for a chunk with an empty K_t. Returns an array of length N.
    """
    sub, seen = _stream_setup(S, tasks, seen_only, first_seen, "average_performance")
    out = np.full(sub.shape[0], np.nan)
    for t in range(sub.shape[0]):
        if seen[t].any():
            out[t] = sub[t, seen[t]].mean()
    return out


def map_(S: Any, tasks: Any = None, *, seen_only: bool = False, first_seen: Any = None) -> float:
    """Mean average performance over the N chunks of the stream.

        MAP = (1/N) sum_{t=1..N} AP_t

    Options as :func:`average_performance`; with ``seen_only`` chunks whose K_t is empty are skipped.
    """
    values = average_performance(S, tasks, seen_only=seen_only, first_seen=first_seen)
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")


mean_average_performance = map_


def maf(S: Any, tasks: Any = None, *, clip_negative: bool = False, seen_only: bool = False,
        first_seen: Any = None) -> float:
    """Mean average forgetting over chunks 2..N.

        MAF = (1/(N-1)) sum_{t=2..N} (1/|K|) sum_{k in K} ( max_{t' < t} s[t', k] - s[t, k] )

    * ``clip_negative`` (default False): with True each term is ``max(0, ...)``, so a task that
      improved does not offset forgetting elsewhere. The StrCVIT paper's wording was not available;
      the default keeps the formula as written above (negative terms allowed).
    * ``seen_only`` (default False): with True, at chunk t only tasks of K seen in an EARLIER chunk
      (first_seen < t) contribute, and the maximum runs over t' from the chunk where the task first
      appeared; chunks without such a task are skipped. ``first_seen`` as in :func:`average_performance`.

    N = 1 gives NaN (no chunk can show forgetting).
    """
    sub, seen = _stream_setup(S, tasks, seen_only, first_seen, "maf")
    terms = []
    for t in range(1, sub.shape[0]):
        values = []
        for k in range(sub.shape[1]):
            earlier = sub[:t, k][seen[:t, k]]
            if earlier.size == 0:
                continue
            drop = earlier.max() - sub[t, k]
            values.append(max(0.0, drop) if clip_negative else drop)
        if values:
            terms.append(float(np.mean(values)))
    return float(np.mean(terms)) if terms else float("nan")


mean_average_forgetting = maf


def summarise_stream(S: Any, ap_tasks: Any = None, *, seen_only: bool = False, first_seen: Any = None,
                     clip_negative: bool = False) -> dict[str, Any]:
    """Streaming summary: ``N``, ``tasks`` (the set K), ``AP`` (list per chunk), ``MAP``, ``MAF``,
    ``final_AP`` (AP after the last chunk) and ``task_mean`` (each task's score averaged over all chunks:
    the kit's reading of a "per-task AP" such as "Places365 AP", an interpretation not confirmed by
    the paper). ``ap_tasks`` is K; the other options are those of :func:`maf`.
    """
    array = _as_2d(S, "summarise_stream")
    columns = _columns_of(S)
    idx = _task_indices(ap_tasks, columns, array.shape[1], "summarise_stream")
    names = [columns[k] if columns else str(k) for k in idx]
    ap = average_performance(S, ap_tasks, seen_only=seen_only, first_seen=first_seen)
    all_names = columns or [str(k) for k in range(array.shape[1])]
    return {
        "N": int(array.shape[0]),
        "tasks": names,
        "AP": [float(v) for v in ap],
        "MAP": map_(S, ap_tasks, seen_only=seen_only, first_seen=first_seen),
        "MAF": maf(S, ap_tasks, clip_negative=clip_negative, seen_only=seen_only, first_seen=first_seen),
        "final_AP": float(ap[-1]),
        "task_mean": {name: float(np.nanmean(array[:, k])) if not np.isnan(array[:, k]).all() else float("nan")
                      for k, name in enumerate(all_names)},
    }


# --------------------------------------------------------------------------------------------------
# Building and storing matrices
# --------------------------------------------------------------------------------------------------

@dataclass
class AccuracyMatrix:
    """A score matrix with stage names (rows) and task names (columns); NaN = not evaluated.

    Square for task-incremental runs (stage t = "trained up to task t"), chunks × tasks for streams.
    Works wherever the metric functions take a matrix (``summarise(am)``, ``np.asarray(am)``).
    """

    values: np.ndarray
    tasks: list[str]
    stages: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.values = np.array(self.values, dtype=float)
        self.tasks = [str(t) for t in self.tasks]
        if self.values.ndim != 2:
            raise DataError(f"AccuracyMatrix: values must be 2-D, got shape {self.values.shape}.")
        rows, cols = self.values.shape
        if cols != len(self.tasks):
            raise DataError(f"AccuracyMatrix: {cols} columns but {len(self.tasks)} task names.")
        if not self.stages:
            self.stages = list(self.tasks) if rows == cols else [f"stage_{t + 1}" for t in range(rows)]
        self.stages = [str(s) for s in self.stages]
        if len(self.stages) != rows:
            raise DataError(f"AccuracyMatrix: {rows} rows but {len(self.stages)} stage names.")
        if len(set(self.tasks)) != len(self.tasks):
            raise DataError("AccuracyMatrix: task names must be unique.")

    @classmethod
    def from_scores(cls, scores: Mapping[Any, Mapping[str, Any]], tasks: Sequence[str],
                    stages: Sequence[str] | None = None, n_stages: int | None = None) -> AccuracyMatrix:
        """Build from ``{stage_index: {task: score}}`` (0-based stage indices, or stage names if ``stages``
        is given) in the task order ``tasks``. Scores may be numbers or objects with a ``.score``
        attribute (:class:`~cvitkit.eval.registry.ScoreResult`). Cells not given are NaN.

        The number of rows is ``len(stages)``, else ``n_stages``, else ``len(tasks)`` (square); a task
        or stage not in the order raises :class:`DataError`.
        """
        tasks = [str(t) for t in tasks]
        rows = len(stages) if stages is not None else (n_stages if n_stages is not None else len(tasks))
        values = np.full((rows, len(tasks)), np.nan)
        stage_names = [str(s) for s in stages] if stages is not None else None
        for key, row in scores.items():
            if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
                t = int(key)
            elif stage_names is not None and str(key) in stage_names:
                t = stage_names.index(str(key))
            else:
                raise DataError(f"AccuracyMatrix.from_scores: stage key {key!r} is neither a 0-based index "
                                f"nor one of the stage names {stage_names}.")
            if not 0 <= t < rows:
                raise DataError(f"AccuracyMatrix.from_scores: stage index {t} out of range 0..{rows - 1}.")
            for task, value in row.items():
                if str(task) not in tasks:
                    raise DataError(f"AccuracyMatrix.from_scores: task '{task}' (stage {key}) is not in the "
                                    f"task order {tasks}.")
                value = getattr(value, "score", value)
                values[t, tasks.index(str(task))] = np.nan if value is None else float(value)
        return cls(values, tasks, list(stage_names) if stage_names else [])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.values.astype(dtype) if dtype is not None else self.values.copy()

    @property
    def shape(self) -> tuple[int, int]:
        return self.values.shape  # type: ignore[return-value]

    def to_frame(self):
        """A pandas DataFrame: stage names as the index (named ``stage``), task names as columns."""
        import pandas as pd

        return pd.DataFrame(self.values, index=pd.Index(self.stages, name="stage"), columns=list(self.tasks))

    @classmethod
    def from_frame(cls, frame) -> AccuracyMatrix:
        """From a DataFrame with stage names as the index and task names as columns."""
        return cls(frame.to_numpy(dtype=float), [str(c) for c in frame.columns], [str(i) for i in frame.index])

    def to_csv(self, path: str | Path) -> Path:
        """Write as CSV (first column ``stage``, then one column per task; empty cell = NaN)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.to_frame().to_csv(path)
        return path

    @classmethod
    def from_csv(cls, path: str | Path) -> AccuracyMatrix:
        """Read a CSV written by :meth:`to_csv` (first column = stage names)."""
        import pandas as pd

        path = Path(path)
        if not path.is_file():
            raise DataError(f"accuracy matrix file not found: {path}.")
        return cls.from_frame(pd.read_csv(path, index_col=0))

    def summarise(self, zero_shot: Any = None) -> dict[str, float]:
        """:func:`summarise` of this (square) matrix."""
        return summarise(self, zero_shot)

    def summarise_stream(self, ap_tasks: Any = None, **options: Any) -> dict[str, Any]:
        """:func:`summarise_stream` of this (chunks × tasks) matrix."""
        return summarise_stream(self, ap_tasks, **options)
