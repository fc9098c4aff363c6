"""The single-task learnability probe: one fresh adapter per (task, epochs), resumable, merged tables."""

from __future__ import annotations

import pandas as pd
import pytest

from cvitkit.errors import ConfigError
from cvitkit.probe import probe_suite
from cvitkit.provenance import work_dir

SUITE = "mllmcl_dcl"


def test_probe_trains_each_task_alone_scores_it_and_reads_finished_probes_back(micro_smoke_profile):
    profile = micro_smoke_profile(batch_size=2)
    table = probe_suite(profile, SUITE, ["Med"], [1.0, 2.0], log=lambda *_: None)

    assert list(table["task"]) == ["Med", "Med"] and list(table["epochs"]) == [1.0, 2.0]
    # 6 training samples at batch 2: 3 optimizer steps per epoch
    assert list(table["steps"]) == [3, 6]
    assert (table["score - chance"] == (table["score"] - table["chance"]).round(1)).all()
    assert table["score"].between(0, 100).all()
    probes = work_dir(profile.name) / "probes" / SUITE / "micro"
    assert sorted(p.name for p in probes.iterdir()) == ["Med__lora_ft__e1", "Med__lora_ft__e2"]

    # a second call with another task keeps the first rows and reads the finished probe back unchanged
    again = probe_suite(profile, SUITE, ["RS", "Med"], [1.0], log=lambda *_: None)
    med = again.set_index("task").loc["Med"]
    assert med["score"] == table.iloc[0]["score"] and med["train seconds"] == table.iloc[0]["train seconds"]
    saved = pd.read_csv(profile.results_dir / "tables" / f"{SUITE}_probe.csv")
    assert list(zip(saved["task"], saved["epochs"])) == [("RS", 1.0), ("Med", 1.0), ("Med", 2.0)]
    assert (profile.results_dir / "tables" / f"{SUITE}_probe.md").exists()


@pytest.mark.parametrize("suite, tasks, epochs, message", [
    ("mllmcl_dcl", ["Nope"], [1.0], "has no task"),
    ("mllmcl_dcl", ["RS"], [0.0], "epochs must be positive"),
    ("strcvit", None, [1.0], "is a stream"),
])
def test_probe_rejects_bad_requests_with_the_fix(micro_smoke_profile, suite, tasks, epochs, message):
    with pytest.raises(ConfigError, match=message):
        probe_suite(micro_smoke_profile(), suite, tasks, epochs, log=lambda *_: None)
