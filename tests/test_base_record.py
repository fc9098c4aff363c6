"""Which pretraining of the base model a run or probe stood on: two pretrainings of one key are told apart."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

from safetensors.torch import load_file, save_file

import cvitkit.base_model
from cvitkit.base_model import base_identity
from cvitkit.runner import record_base_model

REPORT = {"held_out": {"Caption": 284.1392, "VQA": 34.0},
          "provenance": {"created": "2026-12-01T01:58:01+0000", "git_commit": "abc+dirty",
                         "device": {"torch_threads": 2, "cpu_count": 2}}}


def _pretraining(micro_llava_dir: Path, folder: Path, nudge: float = 0.0) -> Path:
    """A copy of the micro model as a cached base model in ``folder``; ``nudge`` moves one weight, as
    another thread layout's float sums would."""
    shutil.copytree(micro_llava_dir, folder)
    (folder / "base.json").write_text(json.dumps(REPORT))
    if nudge:
        weights = next(folder.glob("*.safetensors"))
        tensors = load_file(str(weights))
        name = sorted(tensors)[0]
        tensors[name] = tensors[name] + nudge
        save_file(tensors, str(weights), metadata={"format": "pt"})
    return folder


def _finish_stages(run_dir: Path, count: int) -> None:
    for i in range(count):
        (run_dir / "stages" / f"{i:03d}").mkdir(parents=True, exist_ok=True)
        (run_dir / "stages" / f"{i:03d}" / "stage.json").write_text("{}")


def test_identity_names_the_key_the_weights_and_the_pretraining(micro_llava_dir, tmp_path):
    first = _pretraining(micro_llava_dir, tmp_path / "a" / "cb2a79a9ea3a")
    identity = base_identity(first)
    assert identity["key"] == "cb2a79a9ea3a"
    assert identity["held_out"] == {"Caption": 284.1, "VQA": 34.0}
    assert identity["pretrained"] == "2026-12-01T01:58:01+0000" and identity["torch_threads"] == 2
    assert len(identity["weights_sha256"]) == 16
    # the same weights elsewhere are the same pretraining; one moved weight is another, under the same key
    assert base_identity(_pretraining(micro_llava_dir, tmp_path / "b" / "cb2a79a9ea3a")) == identity
    other = base_identity(_pretraining(micro_llava_dir, tmp_path / "c" / "cb2a79a9ea3a", nudge=1e-6))
    assert other["key"] == identity["key"] and other["weights_sha256"] != identity["weights_sha256"]


def test_identity_of_a_model_folder_without_a_pretraining_report(micro_llava_dir):
    identity = base_identity(micro_llava_dir)
    assert set(identity) == {"key", "weights_sha256"}


def test_a_run_lists_each_pretraining_it_read_from_the_stage_it_read_it(micro_llava_dir, tmp_path):
    first = _pretraining(micro_llava_dir, tmp_path / "first" / "cb2a79a9ea3a")
    second = _pretraining(micro_llava_dir, tmp_path / "second" / "cb2a79a9ea3a", nudge=1e-3)
    run_dir, said = tmp_path / "run", []
    run_dir.mkdir()

    listed = record_base_model(run_dir, first, log=said.append)
    assert listed == [{**base_identity(first), "from_stage": 0}] and not said
    _finish_stages(run_dir, 2)
    # resumed on the same pretraining: nothing added, nothing said
    assert record_base_model(run_dir, first, log=said.append) == listed and not said
    # resumed on another pretraining of the same key: both listed, the second from stage 2 on, and said
    listed = record_base_model(run_dir, second, log=said.append)
    assert [e["weights_sha256"] for e in listed] == [base_identity(first)["weights_sha256"],
                                                      base_identity(second)["weights_sha256"]]
    assert [e["from_stage"] for e in listed] == [0, 2]
    assert len(said) == 1 and "pretrained again" in said[0] and "stages from 2 on" in said[0]
    assert json.loads((run_dir / "base_model.json").read_text()) == {"pretrainings": listed}


def test_a_run_older_than_the_record_says_which_stages_it_cannot_vouch_for(micro_llava_dir, tmp_path):
    run_dir = tmp_path / "old_run"
    _finish_stages(run_dir, 3)
    listed = record_base_model(run_dir, _pretraining(micro_llava_dir, tmp_path / "e044ab7f9ebf"))
    assert [e["from_stage"] for e in listed] == [3]


def test_a_probe_call_records_the_pretraining_each_probe_stood_on(micro_smoke_profile, micro_llava_dir, tmp_path,
                                                                    monkeypatch):
    from cvitkit.probe import probe_suite
    from cvitkit.provenance import work_dir

    base = _pretraining(micro_llava_dir, tmp_path / "base" / "cb2a79a9ea3a")
    monkeypatch.setattr(cvitkit.base_model, "ensure_base_model", lambda profile, log=print: base)
    profile = micro_smoke_profile(batch_size=3)
    profile = replace(profile, model=replace(profile.model, source="base"))
    probe_suite(profile, "mllmcl_dcl", ["Med"], [1.0], log=lambda *_: None)

    calls = json.loads((profile.results_dir / "tables" / "mllmcl_dcl_probe.json").read_text())["calls"]
    expected = [{**base_identity(base), "from_stage": 0}]
    assert calls[-1]["base_model"] == {"Med, 1 epochs": expected}
    folder = next((work_dir(profile.name) / "probes" / "mllmcl_dcl").rglob("Med__lora_ft__e1"))
    assert json.loads((folder / "base_model.json").read_text()) == {"pretrainings": expected}
