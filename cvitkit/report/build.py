"""Build tables (measured beside reported) and figures for a paper; what the notebooks call.

>>> from cvitkit.report import build_paper_tables
>>> paths = build_paper_tables("branchlora", "mini")          # results/mini/tables, results/mini/figures

or step by step, as the notebooks do::

    session = ReportSession("branchlora", profile="mini")
    session.runs_overview()                # which runs exist
    session.table("branchlora_main")       # builds, writes CSV/MD/TeX, displays in Jupyter
    session.figure("branchlora_matrix_branchlora")
    session.finish()                       # writes <paper>_tables.md (all tables of the paper)
"""

from __future__ import annotations

import importlib
import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from cvitkit.provenance import atomic_write_text
from cvitkit.report.reported import PROVENANCE_CLASSES, ReportedCell
from cvitkit.report.render import format_value, provenance_lines, to_markdown_text, write_table
from cvitkit.report.results import RunStore, resolve_results_dir
from cvitkit.report.specs import Cell, CellContext, FigureSpec, TableSpec

__all__ = ["PAPERS", "FigureResult", "ReportSession", "TableResult", "build_paper_tables", "build_table",
           "paper_figures", "paper_tables"]

PAPERS = ("strlora", "branchlora", "mllmcl", "cram")
RUN_COLUMN = "kit run"
STATUS_COLUMN = "run status"


def paper_tables(paper: str) -> list[TableSpec]:
    """The table specs of ``paper`` (one of :data:`PAPERS`)."""
    return list(_module(paper).TABLES)


def paper_figures(paper: str) -> list[FigureSpec]:
    return list(_module(paper).FIGURES)


def _module(paper: str):
    if paper not in PAPERS:
        raise ValueError(f"unknown paper {paper!r}; choose one of {', '.join(PAPERS)}.")
    return importlib.import_module(f"cvitkit.report.{paper}")


def measured_label(label: str, origin: str = "measured") -> str:
    return f"{label} ({origin})"


def reported_label(label: str, classes: list[str]) -> str:
    return f"{label} (reported: {'/'.join(classes)})"


def delta_label(label: str) -> str:
    return f"{label} delta (measured - reported)"


@dataclass
class TableResult:
    """A built table: ``data`` (CSV form: measured numbers, reported strings as written) and
    ``display`` (strings for Markdown/LaTeX), with the provenance of both sides."""

    spec: TableSpec
    data: pd.DataFrame
    display: pd.DataFrame
    measured_columns: list[str]
    reported_columns: list[str]
    delta_columns: list[str]
    reported_sources: list[dict]
    unknown_reported: list[str]
    empty_reasons: dict[str, list[str]]
    measured_info: dict
    generated: str
    generator_commit: str | None = None
    paths: list[Path] = field(default_factory=list)

    @property
    def full_caption(self) -> str:
        return f"{self.spec.caption} Layout: {self.spec.layout}"

    def notes(self) -> list[str]:
        return provenance_lines(self)

    def to_markdown(self) -> str:
        return to_markdown_text(self)

    def _repr_markdown_(self) -> str:  # JupyterLab shows the table with its caption and notes
        return self.to_markdown()

    def __repr__(self) -> str:
        where = f"; written to {self.paths[0].parent}" if self.paths else ""
        return (f"<TableResult {self.spec.id}: {len(self.data)} rows, {len(self.measured_columns)} measured and "
                f"{len(self.reported_columns)} reported columns{where}>")


def _measured_info(spec: TableSpec, store: RunStore) -> dict:
    run_ids = list(OrderedDict.fromkeys(spec.run_ids))
    runs = [store.run(r) for r in run_ids]
    present = [r for r in runs if r.exists]
    described = [r.describe() for r in present]
    parse = {}
    for run in present:
        failures = run.summary.get("parse_failures") or {}
        last = str(run.matrix.index[-1]) if run.matrix is not None and len(run.matrix) else None
        if last not in failures and run.summary.get("stages"):
            last = str(run.summary["stages"][-1])
        if isinstance(failures.get(last), dict):
            total = sum(int(v or 0) for v in failures[last].values() if isinstance(v, (int, float)))
            if total:
                parse[run.run_id] = total
    return {
        "runs_dir": str(store.runs_dir), "run_ids": run_ids, "present": [r.run_id for r in present],
        "not_run": [r.run_id for r in runs if not r.exists],
        "profiles": sorted({d["profile"] for d in described if d["profile"]}),
        "models": sorted({str(d["model"]) for d in described if d["model"]}),
        "commits": sorted({d["git_commit"] for d in described if d["git_commit"]}),
        "dates": sorted({d["created"] for d in described if d["created"]}),
        "devices": sorted({d["device"] for d in described if d["device"]}),
        "parse_failures": parse,
    }


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return None if isinstance(value, float) and math.isnan(value) else float(value)
    return None


def build_table(spec: TableSpec, store: RunStore, deltas: bool = False, paper_dir: str | Path | None = None,
                generator_commit: str | None = None) -> TableResult:
    """Compute every measured cell of ``spec`` from ``store`` and put the reported numbers beside them.

    Never raises for a missing or incomplete run: its cells are empty and say why.
    """
    rows: list[tuple] = []  # (row spec, run or None, measured cells, reported cells)
    for row in spec.rows:
        run = store.run(row.run) if row.run else None
        measured: list[Cell] = []
        for column in spec.columns:
            if column.compute is None or run is None:
                measured.append(Cell(None, "no kit run for this row" if column.compute else ""))
            elif not run.exists:
                measured.append(Cell(None, run.status))
            else:
                try:
                    measured.append(column.compute(CellContext(run, row, spec, store)))
                except Exception as exc:  # noqa: BLE001 - one bad cell must not hide the table
                    measured.append(Cell(None, f"error computing the cell: {type(exc).__name__}: {exc}"))
        reported: list[ReportedCell | None] = []
        for column in spec.columns:
            if spec.reported is None or row.key is None or column.reported_column is None:
                reported.append(None)
            else:
                reported.append(spec.reported.lookup(row.key, column.reported_column, paper_dir))
        if row.optional and (run is None or not run.exists) and not any(reported):
            continue
        rows.append((row, run, measured, reported))

    # reported sources, numbered in order of appearance
    sources: list[dict] = []
    source_index: dict[tuple, dict] = {}
    for row, _run, _measured, reported in rows:
        for cell in reported:
            if cell is None:
                continue
            key = (cell.provenance, cell.source, cell.transcribed_from)
            if key not in source_index:
                source_index[key] = {"n": len(sources) + 1, "provenance": cell.provenance, "source": cell.source,
                                     "transcribed_from": cell.transcribed_from, "rows": [], "notes": {}}
                sources.append(source_index[key])
            entry = source_index[key]
            if row.label not in entry["rows"]:
                entry["rows"].append(row.label)
            for note in filter(None, (n.strip() for n in cell.note.split(";"))):
                rows_with_note = entry["notes"].setdefault(note, [])
                if row.label not in rows_with_note:
                    rows_with_note.append(row.label)

    data_cols: dict[str, list] = OrderedDict([(RUN_COLUMN, []), (STATUS_COLUMN, [])])
    disp_cols: dict[str, list] = OrderedDict([(RUN_COLUMN, []), (STATUS_COLUMN, [])])
    measured_columns, reported_columns, delta_columns, unknown = [], [], [], []
    empty_reasons: dict[str, list[str]] = OrderedDict()
    for row, run, measured, _reported in rows:
        data_cols[RUN_COLUMN].append(row.run or "")
        disp_cols[RUN_COLUMN].append(row.run or "n/a")
        status = "no kit analogue" if run is None else run.status
        data_cols[STATUS_COLUMN].append(status)
        disp_cols[STATUS_COLUMN].append(status)
    for j, column in enumerate(spec.columns):
        if column.compute is not None:
            label = measured_label(column.label, column.origin)
            measured_columns.append(label)
            data_cols[label], disp_cols[label] = [], []
            for row, run, measured, _reported in rows:
                cell = measured[j]
                value = cell.value
                if isinstance(value, float) and math.isnan(value):
                    value = None
                data_cols[label].append(value if value is not None else None)
                if run is None:
                    disp_cols[label].append("n/a")
                elif not run.exists:
                    disp_cols[label].append("not run" if run.status == "not run" else "unreadable")
                elif value is None:
                    disp_cols[label].append("—")
                    if cell.reason:
                        empty_reasons.setdefault(cell.reason, OrderedDict()).setdefault(row.label, []).append(
                            column.label)
                else:
                    disp_cols[label].append(format_value(value, column.fmt))
        cells = [r[3][j] for r in rows]
        if column.reported_column is None or spec.reported is None:
            continue
        if not any(cells):
            unknown.append(column.label)
            continue
        classes = [c for c in PROVENANCE_CLASSES if any(x is not None and c in x.provenance.split("/") for x in cells)]
        rlabel = reported_label(column.label, classes)
        reported_columns.append(rlabel)
        data_cols[rlabel] = [c.value if c else "" for c in cells]
        disp_cols[rlabel] = [f"{c.value} [{source_index[(c.provenance, c.source, c.transcribed_from)]['n']}]"
                             if c else "" for c in cells]
        if deltas and column.compute is not None:
            dlabel = delta_label(column.label)
            values = []
            for (row, run, measured, _r), rcell in zip(rows, cells):
                m = _number(measured[j].value)
                r = rcell.numeric if rcell else None
                values.append(None if m is None or r is None else m - r)
            if any(v is not None for v in values):
                delta_columns.append(dlabel)
                data_cols[dlabel] = values
                disp_cols[dlabel] = [format_value(v, "points") if v is not None else "" for v in values]

    n_measured = sum(1 for c in spec.columns if c.compute is not None)
    reasons = OrderedDict(
        (reason, [f"{row}: all columns" if len(cols) == n_measured and n_measured > 1 else f"{row}: {', '.join(cols)}"
                  for row, cols in by_row.items()])
        for reason, by_row in empty_reasons.items())
    index = pd.Index([r[0].label for r in rows], name=spec.row_header)
    data = pd.DataFrame(data_cols, index=index)
    display = pd.DataFrame(disp_cols, index=index)
    return TableResult(spec, data, display, measured_columns, reported_columns, delta_columns, sources, unknown,
                       dict(reasons), _measured_info(spec, store), time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                       generator_commit)


# --------------------------------------------------------------------------------------------------
# Session: what a notebook holds
# --------------------------------------------------------------------------------------------------

@dataclass
class FigureResult:
    spec: FigureSpec
    path: Path | None
    reason: str = ""

    def _repr_png_(self):
        return self.path.read_bytes() if self.path else None

    def _repr_markdown_(self):
        if self.path:
            return None
        return f"**{self.spec.title}** — not drawn: {self.reason}."

    def __repr__(self) -> str:
        return f"<FigureResult {self.spec.id}: {self.path or 'not drawn: ' + self.reason}>"


class ReportSession:
    """Tables and figures of one paper for one results folder.

    ``results_dir`` (runs are read from ``<results_dir>/runs``) defaults to ``results/<profile>``;
    outputs go to ``<out_dir>/tables`` and ``<out_dir>/figures`` (``out_dir`` defaults to ``results_dir``).
    ``deltas`` adds measured − reported columns; by default only for the ``full`` profile, where the
    kit runs the papers' models and data (tiny synthetic runs are not expected to match absolute numbers).
    """

    def __init__(self, paper: str, profile: str = "", results_dir: str | Path = "", out_dir: str | Path | None = None,
                 deltas: bool | None = None, paper_dir: str | Path | None = None):
        self.paper = paper
        self.results_dir = resolve_results_dir(profile, results_dir)
        self.profile = profile or self.results_dir.name
        self.out_dir = Path(out_dir) if out_dir else self.results_dir
        self.tables_dir = self.out_dir / "tables"
        self.figures_dir = self.out_dir / "figures"
        self.store = RunStore(self.results_dir)
        self.tables = {t.id: t for t in paper_tables(paper)}
        self.figures = {f.id: f for f in paper_figures(paper)}
        self.deltas = (self.profile == "full") if deltas is None else deltas
        self.paper_dir = paper_dir
        self.results: dict[str, TableResult] = {}
        self.figure_results: dict[str, FigureResult] = {}
        self.written: list[Path] = []
        from cvitkit.provenance import git_commit

        self.generator_commit = git_commit()

    def run_ids(self) -> list[str]:
        ids = [r for t in self.tables.values() for r in t.run_ids] + [r for f in self.figures.values() for r in f.runs]
        return list(OrderedDict.fromkeys(ids))

    def runs_overview(self) -> pd.DataFrame:
        """Every run this paper's tables use, with its status and provenance."""
        rows = [self.store.run(r).describe() for r in self.run_ids()]
        return pd.DataFrame(rows).set_index("run")

    def table(self, table_id: str, write: bool = True) -> TableResult:
        if table_id not in self.tables:
            raise KeyError(f"no table {table_id!r} for {self.paper}; tables: {', '.join(self.tables)}.")
        result = build_table(self.tables[table_id], self.store, deltas=self.deltas, paper_dir=self.paper_dir,
                             generator_commit=self.generator_commit)
        if write:
            result.paths = write_table(result, self.tables_dir)
            self.written += result.paths
        self.results[table_id] = result
        return result

    def figure(self, figure_id: str) -> FigureResult:
        from cvitkit.report.plots import save_figure

        spec = self.figures[figure_id]
        missing = [r for r in spec.runs if not self.store.run(r).exists]
        fig = None
        reason = ""
        if len(missing) == len(spec.runs):
            reason = "not run (" + ", ".join(missing) + ")"
        else:
            try:
                fig = spec.draw(self.store)
                if fig is None:
                    reason = "the runs hold no data for this figure"
            except Exception as exc:  # noqa: BLE001 - a figure must not stop the notebook
                reason = f"error while drawing: {type(exc).__name__}: {exc}"
        path = None
        if fig is not None:
            present = [r for r in spec.runs if r not in missing]
            profiles = sorted({str(self.store.run(r).config.get("profile") or self.profile) for r in present})
            commits = sorted({str(self.store.run(r).provenance.get("git_commit")) for r in present})
            stamp = (f"cvitkit measured · profile {', '.join(profiles)} · runs {', '.join(present)} · "
                     f"commit {', '.join(commits)}")
            path = save_figure(fig, self.figures_dir / f"{figure_id}.png", stamp, spec.title)
            self.written.append(path)
        result = FigureResult(spec, path, reason)
        self.figure_results[figure_id] = result
        return result

    def finish(self) -> Path:
        """Write ``<paper>_tables.md``: every table built in this session, in order, with its notes."""
        parts = [f"# {self.paper}: regenerated tables ({self.profile})", "",
                 "Measured columns are the kit's measurements on the runs named in each table; reported columns "
                 "are the papers' numbers as transcribed in results/paper/ with their provenance class. "
                 "Each table's notes give the sources.", ""]
        for table_id in self.tables:
            if table_id in self.results:
                parts += [self.results[table_id].to_markdown(), ""]
        figures = [f for f in self.figure_results.values() if f.path]
        if figures:
            parts += ["## Figures", ""]
            parts += [f"- **{f.spec.title}**: `{f.path.relative_to(self.out_dir)}` — {f.spec.description}"
                      for f in figures]
        path = atomic_write_text(self.tables_dir / f"{self.paper}_tables.md", "\n".join(parts) + "\n")
        self.written.append(path)
        return path

    def build_all(self) -> list[Path]:
        for table_id in self.tables:
            self.table(table_id)
        for figure_id in self.figures:
            self.figure(figure_id)
        self.finish()
        return list(self.written)


def build_paper_tables(paper: str, profile_or_results_dir: str | Path, out_dir: str | Path | None = None,
                       deltas: bool | None = None) -> list[Path]:
    """Build every table and figure of ``paper``; returns the written paths.

    ``profile_or_results_dir`` is a profile name (runs from ``results/<profile>``) or a folder that
    holds ``runs/``. Outputs go to ``<out_dir or results folder>/tables`` and ``/figures``.
    """
    value = str(profile_or_results_dir)
    is_dir = isinstance(profile_or_results_dir, Path) or "/" in value or Path(value).is_dir()
    session = ReportSession(paper, results_dir=value if is_dir else "", profile="" if is_dir else value,
                            out_dir=out_dir, deltas=deltas)
    return session.build_all()
