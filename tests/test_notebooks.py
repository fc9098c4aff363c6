"""Every notebook runs under papermill at smoke size (marker: notebooks)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.notebooks


def test_setup_check_notebook_runs_and_records(tmp_path):
    from cvitkit.notebooks import execute_notebook

    execute_notebook("00_setup_check", tmp_path / "00.ipynb", {"profile": "smoke"})
    record = json.loads((Path(os.environ["CVITKIT_RESULTS"]) / "smoke" / "setup_check.json").read_text())
    assert record["packages"]["torch"] and record["parameters"]["total"] > 1e6
    assert record["loss"] > 0 and record["forward_ms"] > 0
    if record["qlora"]["checked"]:
        assert record["qlora"]["quantised_layer_types"] == ["Linear4bit"]
        assert record["qlora"]["losses"][-1] < record["qlora"]["losses"][0]


# ---------------------------------------------------------------------------------------------------
# Tables notebooks (10-13): run against the small fixed results fixture of cvitkit.report.testing
# ---------------------------------------------------------------------------------------------------

TABLE_NOTEBOOKS = {"10_strlora_tables": "strlora", "11_branchlora_tables": "branchlora",
                   "12_mllmcl_tables": "mllmcl", "13_cram_tables": "cram"}


@pytest.fixture(scope="module")
def report_fixture(tmp_path_factory):
    from cvitkit.report.testing import write_fixture

    return write_fixture(tmp_path_factory.mktemp("report_results"))


@pytest.mark.parametrize("name", sorted(TABLE_NOTEBOOKS))
def test_tables_notebook_writes_every_table_and_figure(name, report_fixture, tmp_path):
    from cvitkit.notebooks import execute_notebook
    from cvitkit.report import paper_tables, read_table_csv

    paper = TABLE_NOTEBOOKS[name]
    execute_notebook(name, tmp_path / f"{name}.ipynb", {"profile": "smoke", "results_dir": str(report_fixture)})
    tables = report_fixture / "tables"
    for spec in paper_tables(paper):
        for suffix in (".csv", ".md", ".tex"):
            assert (tables / f"{spec.id}{suffix}").is_file(), f"{name} did not write {spec.id}{suffix}"
        frame = read_table_csv(tables / f"{spec.id}.csv")
        assert "run status" in frame.columns
        assert all(c.endswith(("(measured)", "(kit config)")) or "(reported: " in c
                   for c in frame.columns if c not in ("kit run", "run status"))
    assert (tables / f"{paper}_tables.md").is_file()
    pngs = sorted((report_fixture / "figures").glob(f"{paper}_*.png"))
    assert pngs, f"{name} wrote no figure"
    executed = json.loads((tmp_path / f"{name}.ipynb").read_text())
    assert not any(o.get("output_type") == "error" for c in executed["cells"] for o in c.get("outputs", []))


def test_data_preparation_notebook_builds_suites_figures_and_card(tmp_path):
    import pandas as pd

    from cvitkit.notebooks import execute_notebook

    execute_notebook("01_data_preparation", tmp_path / "01.ipynb", {"profile": "smoke"})
    results = Path(os.environ["CVITKIT_RESULTS"]) / "smoke"
    summary = json.loads((results / "data_summary.json").read_text())
    assert {"coin", "mllmcl_dcl", "mllmcl_acl", "strcvit", "ucit"} <= set(summary["sizes"])
    assert summary["sizes"]["coin"]["ScienceQA"] == {"train": 24, "test": 8}
    assert summary["streams"]["strcvit_25"]["recurring_tasks"] and not summary["streams"]["strcvit_15"]["empty_chunks"]
    card = pd.read_csv(results / "tables" / "dataset_card.csv")
    assert {"task", "family", "domain", "scorer", "train", "test"} <= set(card.columns)
    assert (card["suite"] == "strcvit").sum() == 11
    assert (results / "figures" / "stream_composition_strcvit.png").stat().st_size > 10_000
    assert (results / "figures" / "data_grid_coin.png").is_file()
    assert (Path(os.environ["CVITKIT_WORK"]) / "smoke" / "data" / "coin" / "_finished.json").is_file()
