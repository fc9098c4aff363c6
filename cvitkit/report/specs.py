"""Table specifications: for each table of a paper, its rows (kit runs), columns (how each measured
cell is computed) and where its reported numbers are.

A :class:`TableSpec` is declarative: the per-paper modules (:mod:`cvitkit.report.strlora`,
:mod:`~cvitkit.report.branchlora`, :mod:`~cvitkit.report.mllmcl`, :mod:`~cvitkit.report.cram`) list
their tables; :func:`cvitkit.report.build.build_table` turns one into measured and reported columns
side by side. Column factories (how a cell is computed) live in :mod:`cvitkit.report.columns`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cvitkit.report.reported import ReportedSpec

if TYPE_CHECKING:
    import matplotlib.figure

    from cvitkit.report.results import Run, RunStore

__all__ = ["Cell", "CellContext", "ColumnSpec", "FigureSpec", "RowSpec", "TableSpec"]

#: Formats a column's values are shown in (see :func:`cvitkit.report.render.format_value`).
FORMATS = ("score", "points", "count", "ms", "ratio", "fraction", "int", "text")
#: Where a non-reported column comes from: the kit's measurements, or the kit's run configuration.
ORIGINS = ("measured", "kit config")


@dataclass
class Cell:
    """A computed cell: a value, or None with the reason it is empty (shown in the table's notes)."""

    value: Any = None
    reason: str = ""


@dataclass
class CellContext:
    """What a column's compute function sees: the row's run, the row, the table and all runs."""

    run: Run
    row: RowSpec
    table: TableSpec
    store: RunStore

    def param(self, name: str, default: Any = None) -> Any:
        """A row parameter, else a table parameter, else ``default``."""
        return self.row.params.get(name, self.table.params.get(name, default))


@dataclass
class ColumnSpec:
    """One table column: the label (the paper's column name), how the measured cell is computed
    (``compute``; None for a reported-only column), the formula in words, and the reported column."""

    label: str
    compute: Callable[[CellContext], Cell] | None
    formula: str = ""
    fmt: str = "score"
    reported: str | None = ""  # CSV column in the reported file; "" = same as label; None = never reported
    origin: str = "measured"

    def __post_init__(self):
        if self.fmt not in FORMATS:
            raise ValueError(f"column {self.label!r}: fmt must be one of {FORMATS}, got {self.fmt!r}.")
        if self.origin not in ORIGINS:
            raise ValueError(f"column {self.label!r}: origin must be one of {ORIGINS}, got {self.origin!r}.")

    @property
    def reported_column(self) -> str | None:
        return None if self.reported is None else (self.reported or self.label)


@dataclass
class RowSpec:
    """One table row: the paper's row name and the kit run that measures it.

    ``run`` is a run id (``"<suite>/<method>[__<variant>]"``) or None when the kit has no analogue
    (the row then shows reported numbers only). ``reported_key`` is the value of the reported file's
    key column for this row ("" = the label; None = no reported row). An ``optional`` row is left out
    while its run does not exist and it has no reported number.
    """

    label: str
    run: str | None
    reported_key: str | None = ""
    params: dict[str, Any] = field(default_factory=dict)
    optional: bool = False
    note: str = ""

    @property
    def key(self) -> str | None:
        return None if self.reported_key is None else (self.reported_key or self.label)


@dataclass
class TableSpec:
    """A table of a paper as the kit regenerates it.

    ``caption`` says what the table shows and how measured cells are computed; ``layout`` says what
    of the layout is known and what is inferred (every layout here is inferred: no results table of
    the four papers was available in full, see ``shared/reference/paper_numbers.md``).
    """

    id: str
    paper: str
    title: str
    caption: str
    layout: str
    rows: list[RowSpec]
    columns: list[ColumnSpec]
    reported: ReportedSpec | None = None
    row_header: str = "method"
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        labels = [c.label for c in self.columns]
        if len(set(labels)) != len(labels):
            raise ValueError(f"table {self.id}: duplicate column labels.")
        rows = [r.label for r in self.rows]
        if len(set(rows)) != len(rows):
            raise ValueError(f"table {self.id}: duplicate row labels.")

    @property
    def run_ids(self) -> list[str]:
        return [r.run for r in self.rows if r.run]


@dataclass
class FigureSpec:
    """A figure: ``draw(store)`` returns a matplotlib Figure, or None when its runs do not exist."""

    id: str
    paper: str
    title: str
    description: str
    runs: list[str]
    draw: Callable[[RunStore], matplotlib.figure.Figure | None]
