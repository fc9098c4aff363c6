"""The benchmark scripts run at their tiny size and write CSVs with the expected columns.

Benchmarks are not timed tests: nothing here asserts a speed, only that every script measures what it
says (positive times and byte counts, one row per configuration) and writes it where ``--out`` says.
"""

from __future__ import annotations

import csv
import importlib.util
import json

import pytest

from tests.conftest import REPO_ROOT


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO_ROOT / "bench" / f"bench_{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rows(path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _positive(rows, column):
    values = [float(r[column]) for r in rows if r.get(column) not in ("", None)]
    assert values, f"no values in column {column}"
    assert all(v > 0 for v in values), f"{column}: {values}"


MACHINE = {"cpu", "cores", "torch", "device"}


def test_adapters_rows_references_and_ratios(tmp_path):
    script = _script("adapters")
    assert script.main(["--size", "tiny", "--out", str(tmp_path), "--repeats", "1"]) == 0
    rows = _rows(tmp_path / "adapters.csv")
    assert MACHINE <= set(rows[0])
    by_row = {r["row"]: r for r in rows}
    assert set(script.ROWS) <= set(by_row)
    for label, r in by_row.items():
        assert r["reference"] in by_row
        if label == r["reference"]:
            assert float(r["ratio_vs_lora"]) == 1.0  # a reference against itself
    _positive(rows, "step_ms_median")
    _positive(rows, "ratio_vs_lora")
    _positive(rows, "trainable_params")
    # the batched mixture and its loop reference hold the same parameters
    assert by_row["moelora"]["trainable_params"] == by_row["moelora_loop"]["trainable_params"]


def test_loss_rows_same_loss_fewer_saved_activations(tmp_path):
    script = _script("loss")
    assert script.main(["--size", "tiny", "--out", str(tmp_path), "--repeats", "1"]) == 0
    rows = {r["row"]: r for r in _rows(tmp_path / "loss.csv")}
    assert set(rows) == {"full_logits", "answer_logits"}
    assert float(rows["full_logits"]["ratio_vs_full"]) == 1.0
    _positive(list(rows.values()), "step_ms_median")
    # logits at a few answer positions instead of every position: strictly fewer bytes saved for backward
    assert 0 < float(rows["answer_logits"]["activation_ratio"]) < 1.0
    assert int(rows["answer_logits"]["supervised_tokens"]) < int(rows["answer_logits"]["tokens"])


def test_loop_reference_equals_the_batched_layer():
    import torch

    from cvitkit.adapters import mixture_layers
    from cvitkit.bench import method_in_training, synthetic_records
    from cvitkit.data import TrainCollator
    from cvitkit.models import build_tiny_llava

    model, processor = build_tiny_llava("micro", seed=0)
    batch = TrainCollator(processor)(synthetic_records(2, 32))
    method, _ = method_in_training("moelora", model, processor, batch, lead_steps=1)
    layer = mixture_layers(method.model)[0]
    x = torch.randn(2, 5, layer.in_features)
    with torch.no_grad():
        batched = layer.adapter_delta(x, "default")
        looped = _script("adapters").loop_delta(layer, x, "default")
    assert batched.abs().sum() > 0
    torch.testing.assert_close(looped, batched, rtol=1e-4, atol=1e-6)


def test_scaling_series_and_fit(tmp_path):
    script = _script("scaling")
    assert script.fit([1, 2, 4], [2.0, 4.0, 8.0]) == (pytest.approx(2.0), True)
    assert script.fit([1, 2, 4], [1.0, 2.0, 10.0])[1] is False  # quadratic-looking growth is flagged
    assert script.main(["--size", "tiny", "--out", str(tmp_path)]) == 0
    rows = _rows(tmp_path / "scaling.csv")
    series = {r["series"] for r in rows}
    assert series == {"moelora_fixed_total_rank", "moelora_fixed_expert_rank", "branchlora_tasks", "cram_tasks"}
    _positive(rows, "step_ms")
    fixed = sorted((int(r["count"]), int(r["trainable_params"])) for r in rows
                   if r["series"] == "moelora_fixed_expert_rank")
    assert [p for _, p in fixed] == sorted(p for _, p in fixed) and fixed[0][1] < fixed[-1][1]


def test_memory_measures_and_estimates(tmp_path):
    assert _script("memory").main(["--size", "tiny", "--out", str(tmp_path)]) == 0
    rows = _rows(tmp_path / "memory.csv")
    measured = [r for r in rows if r["part"] == "measured"]
    estimated = [r for r in rows if r["part"] == "estimate"]
    assert {r["precision"] for r in measured} >= {"fp32", "bf16"}
    _positive(measured, "total_mib")
    _positive(measured, "estimate_weights_ratio")
    for precision in {r["precision"] for r in measured}:  # checkpointing saves activations
        on, off = (next(float(r["activations_mib"]) for r in measured
                        if r["precision"] == precision and r["checkpointing"] == str(c)) for c in (True, False))
        assert on < off
    assert any(r["fits_12gb"] == "True" for r in estimated)
    assert all(r["fits_12gb"] == "False" for r in estimated if r["precision"] == "none")


def test_inference_rows_and_mr_lora_two_stage_cost(tmp_path):
    script = _script("inference")
    assert script.main(["--size", "tiny", "--out", str(tmp_path)]) == 0
    rows = {r["row"]: r for r in _rows(tmp_path / "inference.csv")}
    assert set(rows) == set(script.ROWS)
    _positive(list(rows.values()), "tokens_per_s")
    assert float(rows["lora_merged"]["slowdown_vs_merged"]) == 1.0
    mr = rows["mr_lora_two_stage"]
    assert float(mr["router_seconds_per_batch"]) > 0 and float(mr["expert_seconds_per_batch"]) > 0


def test_e2e_reads_stage_markers_and_reports_missing_ones(tmp_path, capsys):
    work = tmp_path / "runs"
    marker = work / "smoke" / "stages" / "data" / "all.json"
    marker.parent.mkdir(parents=True)
    marker.write_text(json.dumps({"stage": "data", "job": "all", "seconds": 12.5, "finished": "2026-01-01T00:00:00"}))
    assert _script("e2e").main(["--work", str(work), "--out", str(tmp_path)]) == 0
    rows = _rows(tmp_path / "e2e.csv")
    smoke = {r["stage"]: r for r in rows if r["profile"] == "smoke"}
    assert float(smoke["data"]["seconds"]) == 12.5 and smoke["train"]["status"] == "no record"
    assert float(smoke["TOTAL (recorded stages)"]["seconds"]) == 12.5
    assert "no stage record for mini" in capsys.readouterr().out
