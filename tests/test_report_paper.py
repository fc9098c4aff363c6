"""results/paper: every reported number is traceable to the shared transcriptions, every table spec
points at real files and columns, and a reported number can only ever land in a reported column."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from cvitkit.report import PAPER_DIR, RunStore, build_table, load_reported, paper_tables
from cvitkit.report.build import PAPERS
from cvitkit.report.reported import PROVENANCE_CLASSES, PROVENANCE_COLUMNS
from cvitkit.report.testing import write_fixture

SHARED = Path(__file__).resolve().parents[2] / "shared"
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e-?\d+)?")
PAPER_FILES = sorted(PAPER_DIR.glob("*.csv"))
ALL_SPECS = [spec for paper in PAPERS for spec in paper_tables(paper)]


def _numbers(text: str) -> set[float]:
    text = text.replace("\u2212", "-")
    values = {float(m) for m in NUMBER.findall(text)}
    return values | {abs(v) for v in values}


@pytest.fixture(scope="module")
def shared_numbers() -> set[float]:
    sources = sorted((SHARED / "paper_tables").glob("*")) + [SHARED / "reference" / "paper_numbers.md"]
    sources = [p for p in sources if p.is_file()]
    if not sources:
        pytest.skip(f"the shared transcriptions are not available at {SHARED}")
    return set().union(*(_numbers(p.read_text(encoding="utf-8")) for p in sources))


def test_paper_folder_has_a_readme_and_files():
    assert (PAPER_DIR / "README.md").is_file()
    assert len(PAPER_FILES) >= 10


@pytest.mark.parametrize("path", PAPER_FILES, ids=lambda p: p.name)
def test_every_number_in_results_paper_is_in_the_shared_transcriptions(path, shared_numbers):
    frame = load_reported(path.name)
    for column in frame.columns:
        if column in PROVENANCE_COLUMNS:
            continue
        for cell in frame[column]:
            for token in NUMBER.findall(cell.replace("\u2212", "-")):
                assert float(token) in shared_numbers, f"{path.name}: {column}={cell!r}: {token} not in shared/"


@pytest.mark.parametrize("path", PAPER_FILES, ids=lambda p: p.name)
def test_every_reported_row_has_a_provenance_class_and_source(path):
    frame = load_reported(path.name)
    assert set(frame["provenance"]) <= set(PROVENANCE_CLASSES)
    for _, row in frame.iterrows():
        assert row["provenance"] != "unknown" and row["source"].strip() and row["transcribed_from"].strip()
        assert row["transcribed_from"].startswith(("shared/paper_tables/", "shared/reference/paper_numbers.md"))


def test_table_ids_are_unique_and_specs_point_at_real_columns():
    ids = [spec.id for spec in ALL_SPECS]
    assert len(ids) == len(set(ids))
    for spec in ALL_SPECS:
        assert spec.layout and spec.caption, spec.id
        if spec.reported is None:
            continue
        frame = load_reported(spec.reported.file)
        assert spec.reported.key in frame.columns, spec.id
        for column in spec.reported.filters:
            assert column in frame.columns, spec.id
        for column in spec.columns:
            if column.reported_column is not None:
                assert column.reported_column in frame.columns, (spec.id, column.label)


def test_measured_and_reported_columns_are_labelled(tmp_path):
    store = RunStore(write_fixture(tmp_path))
    for spec in ALL_SPECS:
        result = build_table(spec, store)
        for label in result.data.columns:
            if label in ("kit run", "run status"):
                continue
            assert re.search(r" \((measured|kit config|reported: [a-z/]+)\)$", label), (spec.id, label)
        assert all(c.endswith("(measured)") or c.endswith("(kit config)") for c in result.measured_columns)
        assert all(" (reported: " in c for c in result.reported_columns)


def test_a_reported_number_never_lands_in_a_measured_column(tmp_path):
    """Replace every reported value with a unique sentinel, rebuild every table with measured runs
    present, and look for the sentinels: only reported columns may hold them, and every reported
    number must be shown by some table (except the seed Places365 AP without a stream length)."""
    paper_dir = tmp_path / "paper"
    shutil.copytree(PAPER_DIR, paper_dir)
    value_columns: dict[str, set[str]] = {}
    for spec in ALL_SPECS:
        if spec.reported:
            value_columns.setdefault(spec.reported.file, set()).update(
                c.reported_column for c in spec.columns if c.reported_column)
    sentinels: dict[str, tuple[str, str]] = {}
    for name, columns in value_columns.items():
        frame = pd.read_csv(paper_dir / name, dtype=str, keep_default_na=False)
        for column in columns:
            for i, value in enumerate(frame[column]):
                if value.strip():
                    sentinel = f"{90000 + len(sentinels)}.123"
                    sentinels[sentinel] = (name, f"{frame.iloc[i][frame.columns[0]]} / {column} = {value}")
                    frame.loc[i, column] = sentinel
        frame.to_csv(paper_dir / name, index=False)
    assert len(sentinels) >= 40

    store = RunStore(write_fixture(tmp_path / "results"))
    shown = set()
    for spec in ALL_SPECS:
        result = build_table(spec, store, deltas=True, paper_dir=paper_dir)
        for label in result.measured_columns + ["kit run", "run status"]:
            for frame in (result.data, result.display):
                text = " ".join(str(v) for v in frame[label])
                assert not any(s in text for s in sentinels), (spec.id, label)
        for label in result.reported_columns:
            shown |= {s for s in sentinels if any(str(v).startswith(s) for v in result.data[label])}
        for label in result.delta_columns:  # a delta is a difference, never the reported value itself
            assert not any(str(v) in sentinels for v in result.data[label])
    unplaced = {sentinels[s] for s in set(sentinels) - shown}
    assert unplaced == {("strlora_main.csv", "StrLoRA / Places365 = 33.37")}, unplaced
