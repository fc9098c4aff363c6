"""Measured results: the runs a table needs, read from ``<results>/runs/<run_id>/``.

A run folder (written by :func:`cvitkit.runner.export_summary`) holds ``matrix.csv`` (index column
``stage``, one column per task, scores in %, empty = not evaluated; an optional first row ``initial``
is the model before any training), ``metrics.json``, ``summary.json``, ``statistics.json`` (per stage
folder ``"001"``, ``"002"``, … the method's statistics) and ``config.json`` (with ``provenance``).

Nothing here raises for a run that is absent or unreadable: :class:`Run` then reports
``status == "not run"`` (or ``"unreadable: …"``) and every table cell that needs it stays empty.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from cvitkit.provenance import atomic_write_json, atomic_write_text

__all__ = ["Run", "RunStore", "TASK_ALIASES", "normalise_task", "results_root", "resolve_results_dir", "write_run"]

NOT_RUN = "not run"

#: Groups of task names that denote the same task in different files (compared after
#: :func:`normalise_task`): the paper's spelling and the spellings used by suites and releases.
TASK_ALIASES: tuple[frozenset[str], ...] = (
    frozenset({"places365", "places", "placesproxy"}),
    frozenset({"vizwizcap", "vizwizcaption", "vizcap"}),
    frozenset({"clevr", "clevrmath"}),
    frozenset({"app", "gui", "guinavigation"}),
    frozenset({"vp", "visualperception"}),
    frozenset({"math", "mathlogic", "mathandlogic"}),
    frozenset({"infographicvqa", "infovqa"}),
    frozenset({"floodnetvqa", "floodnet"}),
)


def normalise_task(name: Any) -> str:
    """Lower-case alphanumerics only: ``"OCR-VQA"`` and ``"OCRVQA"`` both become ``"ocrvqa"``."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def same_task(a: Any, b: Any) -> bool:
    na, nb = normalise_task(a), normalise_task(b)
    if na == nb:
        return True
    return any(na in group and nb in group for group in TASK_ALIASES)


def results_root() -> Path:
    """The root of ``results/`` (``CVITKIT_RESULTS`` moves it, as for :class:`cvitkit.profiles.Profile`)."""
    from cvitkit.profiles import REPO_ROOT

    return Path(os.environ.get("CVITKIT_RESULTS", REPO_ROOT / "results"))


def resolve_results_dir(profile: str = "", results_dir: str | Path = "") -> Path:
    """``results_dir`` when given, else ``results/<profile>`` (the profile's ``results_dir``)."""
    if results_dir not in ("", None):
        return Path(results_dir).expanduser().resolve()
    if not profile:
        raise ValueError("give a profile name (smoke, mini, full) or a results folder.")
    return results_root() / str(profile)


def _stage_order(key: str) -> tuple[int, Any]:
    return (0, int(key)) if str(key).isdigit() else (1, str(key))


@dataclass
class Run:
    """One run's summary files; ``status`` is ``"ok"``, ``"not run"`` or ``"unreadable: <reason>"``."""

    run_id: str
    path: Path
    status: str = NOT_RUN
    matrix: pd.DataFrame | None = None
    metrics: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    statistics: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    answers: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    cache: dict = field(default_factory=dict, repr=False)

    @property
    def exists(self) -> bool:
        return self.status == "ok"

    @classmethod
    def load(cls, run_id: str, path: Path) -> Run:
        run = cls(run_id, path)
        matrix_path = path / "matrix.csv"
        if not matrix_path.is_file():
            return run
        try:
            frame = pd.read_csv(matrix_path, index_col=0)
            frame.index = [str(i) for i in frame.index]
            frame.index.name = "stage"
            frame.columns = [str(c) for c in frame.columns]
            run.matrix = frame.apply(pd.to_numeric, errors="coerce").astype(float)
        except Exception as exc:  # noqa: BLE001 - a broken file must not stop the other tables
            run.status = f"unreadable: {matrix_path.name} ({exc})"
            return run
        if run.matrix.empty:
            run.status = f"unreadable: {matrix_path.name} has no rows"
            return run
        run.status = "ok"
        for name in ("metrics", "summary", "statistics", "config", "answers"):
            file = path / f"{name}.json"
            if not file.is_file():
                continue
            try:
                data = json.loads(file.read_text(encoding="utf-8"))
                setattr(run, name, data if isinstance(data, dict) else {})
            except (OSError, ValueError) as exc:
                run.problems.append(f"{file.name}: {exc}")
        return run

    # ---------------------------------------------------------------------------------- matrix
    @property
    def trained(self) -> pd.DataFrame:
        """The matrix without the ``initial`` (before training) row: one row per trained stage.

        A run that never trains (zero-shot) may hold only an ``initial`` row: that row is its result.
        """
        if self.matrix is None:
            return pd.DataFrame()
        trained = self.matrix.drop(index="initial", errors="ignore")
        return trained if len(trained) else self.matrix

    @property
    def initial(self) -> pd.Series | None:
        if self.matrix is None or "initial" not in self.matrix.index:
            return None
        return self.matrix.loc["initial"]

    @property
    def tasks(self) -> list[str]:
        return [] if self.matrix is None else list(self.matrix.columns)

    def column(self, task: str) -> str | None:
        """The matrix column holding ``task`` (exact name, else the same normalised name or an alias)."""
        if task in self.tasks:
            return task
        for col in self.tasks:
            if same_task(col, task):
                return col
        return None

    # ---------------------------------------------------------------------------------- statistics
    def stage_statistics(self, key: str) -> list[tuple[str, Any]]:
        """``[(stage, statistics[stage][key])]`` in stage order, for the stages that recorded ``key``."""
        out = []
        for stage in sorted(self.statistics, key=_stage_order):
            value = self.statistics[stage]
            if isinstance(value, Mapping) and key in value and value[key] not in (None, {}, []):
                out.append((stage, value[key]))
        return out

    def last_statistic(self, key: str) -> Any:
        values = self.stage_statistics(key)
        return values[-1][1] if values else None

    # ---------------------------------------------------------------------------------- provenance
    @property
    def provenance(self) -> dict:
        return self.config.get("provenance") or {}

    def describe(self) -> dict:
        """Profile, model, commit, date and device of the run (from ``config.json``)."""
        prov = self.provenance
        model = self.config.get("model") or {}
        device = prov.get("device") or {}
        return {
            "run": self.run_id, "status": self.status, "profile": self.config.get("profile"),
            "model": model.get("preset") or model.get("path") or None,
            "git_commit": prov.get("git_commit"), "created": prov.get("created"),
            "device": device.get("gpu") or (f"CPU ({device.get('cpu_count')} cores)" if device else None),
        }


class RunStore:
    """Loads runs from ``<results_dir>/runs/<run_id>/`` on demand and caches them."""

    def __init__(self, results_dir: str | Path):
        self.results_dir = Path(results_dir)
        self.runs_dir = self.results_dir / "runs"
        self._runs: dict[str, Run] = {}

    def run(self, run_id: str) -> Run:
        if run_id not in self._runs:
            self._runs[run_id] = Run.load(run_id, self.runs_dir / run_id)
        return self._runs[run_id]

    __getitem__ = run

    def available(self) -> list[str]:
        """Run ids that have a ``matrix.csv`` under ``runs/``."""
        if not self.runs_dir.is_dir():
            return []
        return sorted(str(p.parent.relative_to(self.runs_dir)) for p in self.runs_dir.glob("**/matrix.csv"))


def write_run(results_dir: str | Path, run_id: str, matrix: pd.DataFrame | Mapping[str, Mapping[str, float]],
              metrics: dict | None = None, summary: dict | None = None, statistics: dict | None = None,
              config: dict | None = None) -> Path:
    """Write a run's summary files in the exported layout (tests, imported external results).

    ``matrix`` is a DataFrame (index = stage names) or ``{stage: {task: score}}`` in row order.
    """
    path = Path(results_dir) / "runs" / run_id
    if not isinstance(matrix, pd.DataFrame):
        matrix = pd.DataFrame.from_dict(dict(matrix), orient="index")
    matrix = matrix.copy()
    matrix.index.name = "stage"
    atomic_write_text(path / "matrix.csv", matrix.to_csv(float_format="%.4f"))
    for name, data in (("metrics", metrics), ("summary", summary), ("statistics", statistics), ("config", config)):
        if data is not None:
            atomic_write_json(path / f"{name}.json", data)
    return path
