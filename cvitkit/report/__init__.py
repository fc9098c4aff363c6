"""Reporting: regenerate every table of the four papers, measured and reported side by side.

* :mod:`~cvitkit.report.results` — load runs from ``results/<profile>/runs/<run_id>/`` (missing → "not run");
* :mod:`~cvitkit.report.reported` — the papers' numbers in ``results/paper/*.csv`` with provenance;
* :mod:`~cvitkit.report.specs`, :mod:`~cvitkit.report.columns` — table specs and how each cell is computed;
* :mod:`~cvitkit.report.strlora`, :mod:`~cvitkit.report.branchlora`, :mod:`~cvitkit.report.mllmcl`,
  :mod:`~cvitkit.report.cram` — each paper's tables and figures;
* :mod:`~cvitkit.report.build` — :func:`build_table`, :class:`ReportSession`, :func:`build_paper_tables`;
* :mod:`~cvitkit.report.render` — CSV / Markdown / LaTeX with provenance; :mod:`~cvitkit.report.plots` — figures.

A reported number is never put in a measured column: measured columns are labelled ``(measured)``,
reported ones ``(reported: <class>)``.
"""

from cvitkit.report.build import (PAPERS, FigureResult, ReportSession, TableResult, build_paper_tables, build_table,
                                  paper_figures, paper_tables)
from cvitkit.report.render import read_table_csv
from cvitkit.report.reported import PAPER_DIR, load_reported
from cvitkit.report.results import Run, RunStore, write_run

__all__ = ["PAPERS", "PAPER_DIR", "FigureResult", "ReportSession", "Run", "RunStore", "TableResult",
           "build_paper_tables", "build_table", "load_reported", "paper_figures", "paper_tables", "read_table_csv",
           "write_run"]
