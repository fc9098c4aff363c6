"""Reported numbers: the papers' values transcribed in ``results/paper/*.csv``, with provenance.

Each file holds one paper table: key columns naming the row (e.g. ``method``; extra qualifiers such
as ``chunks`` or ``backbone``), one column per table column, and four provenance columns:

* ``provenance`` — class: ``paper`` (read from the paper), ``secondary`` (third-party summary),
  ``seed`` (the project's seed document), ``code`` (authors' released code), ``unknown``;
* ``source`` — where the number comes from, as written in the transcription;
* ``transcribed_from`` — the file of ``shared/`` it was copied from;
* ``note`` — caveats (stage unknown, doubtful, name as given, ...).

Cells are kept as written (``"44.20"``, ``"350M"``, ``"-25.91"``); an empty cell is unknown. These
numbers are shown *beside* the kit's measurements, never in their place. The folder lives in the
repository (``results/paper``), so ``CVITKIT_RESULTS`` does not move it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pandas as pd

from cvitkit.profiles import REPO_ROOT

__all__ = ["PAPER_DIR", "PROVENANCE_CLASSES", "PROVENANCE_COLUMNS", "ReportedCell", "ReportedSpec", "load_reported"]

PAPER_DIR = REPO_ROOT / "results" / "paper"
PROVENANCE_COLUMNS = ("provenance", "source", "transcribed_from", "note")
PROVENANCE_CLASSES = ("paper", "secondary", "seed", "code", "unknown")


@lru_cache(maxsize=64)
def _read(path: str, mtime: float) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[], encoding="utf-8")


def load_reported(name: str, paper_dir: str | Path | None = None) -> pd.DataFrame:
    """``results/paper/<name>`` as strings exactly as written (empty string = unknown)."""
    path = Path(paper_dir or PAPER_DIR) / name
    if not path.is_file():
        raise FileNotFoundError(f"reported-number file {path} not found; the transcriptions live in {PAPER_DIR}.")
    frame = _read(str(path), path.stat().st_mtime).copy()
    missing = [c for c in PROVENANCE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing provenance column(s) {missing}; every reported file needs "
                         f"{', '.join(PROVENANCE_COLUMNS)}.")
    bad = sorted(set(frame["provenance"]) - set(PROVENANCE_CLASSES))
    if bad:
        raise ValueError(f"{path}: unknown provenance class(es) {bad}; valid: {', '.join(PROVENANCE_CLASSES)}.")
    return frame


@dataclass(frozen=True)
class ReportedCell:
    """One reported number with where it comes from."""

    value: str
    provenance: str
    source: str
    transcribed_from: str
    note: str
    file: str

    @property
    def numeric(self) -> float | None:
        try:
            return float(self.value.replace("\u2212", "-"))
        except ValueError:
            return None


@dataclass
class ReportedSpec:
    """Where a table's reported numbers are: a file, the key column, row filters, column names.

    ``columns`` maps a table column label to the CSV column (default: the same label). ``filters``
    keeps only the CSV rows whose columns equal the given strings (e.g. ``{"chunks": "15"}``).
    """

    file: str
    key: str = "method"
    filters: dict[str, str] = field(default_factory=dict)
    columns: dict[str, str] = field(default_factory=dict)

    def frame(self, paper_dir: str | Path | None = None) -> pd.DataFrame:
        frame = load_reported(self.file, paper_dir)
        for column, value in self.filters.items():
            frame = frame[frame[column] == value]
        return frame

    def csv_column(self, label: str) -> str:
        return self.columns.get(label, label)

    def lookup(self, row_key: str, label: str, paper_dir: str | Path | None = None) -> ReportedCell | None:
        """The reported cell of row ``row_key`` and table column ``label``, or None when unknown."""
        frame = self.frame(paper_dir)
        column = self.csv_column(label)
        if column not in frame.columns:
            return None
        hits = frame[(frame[self.key] == row_key) & (frame[column].str.strip() != "")]
        if hits.empty:
            return None
        if hits[column].nunique() > 1:  # two transcriptions disagree: show both, never pick one
            values = " / ".join(hits[column])
            return ReportedCell(values, "/".join(sorted(set(hits["provenance"]))),
                                " | ".join(sorted(set(hits["source"]))),
                                " | ".join(sorted(set(hits["transcribed_from"]))),
                                "conflicting transcriptions: " + " | ".join(h for h in hits["note"] if h), self.file)
        hit = hits.iloc[0]
        return ReportedCell(str(hit[column]), hit["provenance"], hit["source"], hit["transcribed_from"], hit["note"],
                            self.file)
