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
