"""A small fixed results fixture for the reporting tests and notebook smoke runs.

The runs are hand-written with simple closed-form matrices so that every table cell can be checked by
hand (see ``tests/test_report_tables.py``). They are NOT measurements: their ``config.json`` says
``"profile": "fixture"`` and the writer refuses to put them into the repository's ``results/``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cvitkit.report.results import write_run

__all__ = ["COIN", "DCL", "STREAM", "UCIT", "write_fixture"]

COIN = ["ScienceQA", "TextVQA", "ImageNet", "GQA", "VizWiz", "Grounding", "VQAv2", "OCRVQA"]  # OCRVQA: alias of OCR-VQA
STREAM = ["AD", "ChartQA", "Fin", "GQA", "Grounding", "ImageNet", "OCRVQA", "Places", "RS", "TextCaps", "VQAv2"]
DCL = ["RS", "Med", "AD", "Sci", "Fin"]
UCIT = ["ImageNet-R", "ArxivQA", "VizWiz-Cap", "IconQA", "CLEVR", "Flickr30k"]
LAYERS = ["model.language_model.layers.0.self_attn.q_proj", "model.language_model.layers.1.self_attn.q_proj"]


def _config(run_id: str, **method_config) -> dict:
    suite, method = run_id.split("/")
    return {"profile": "fixture", "suite": suite, "method": method, "model": {"preset": "tiny-3m"},
            "method_config": method_config,
            "provenance": {"created": "2026-01-02T03:04:05+0000", "git_commit": "fixture0000",
                           "device": {"cpu_count": 2, "cuda": False}, "note": "hand-written test fixture"}}


def _triangle(tasks, diag, drop, initial=None) -> pd.DataFrame:
    """R[t, i] = diag[i] - drop * (t - i) for i <= t, empty above the diagonal."""
    size = len(tasks)
    values = np.full((size, size), np.nan)
    for t in range(size):
        for i in range(t + 1):
            values[t, i] = diag[i] - drop * (t - i)
    frame = pd.DataFrame(values, index=list(tasks), columns=list(tasks))
    if initial is not None:
        frame = pd.concat([pd.DataFrame([initial], index=["initial"], columns=list(tasks)), frame])
    return frame


def _stream(chunks: int, base: float, bonus: float, initial: bool) -> pd.DataFrame:
    """s[t, k] = base + k + (bonus if t is odd else 0), t = 1..chunks, k = column position."""
    rows = {f"chunk_{t:03d}": [base + k + (bonus if t % 2 else 0.0) for k in range(len(STREAM))]
            for t in range(1, chunks + 1)}
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=STREAM)
    if initial:
        frame = pd.concat([pd.DataFrame([[0.0] * len(STREAM)], index=["initial"], columns=STREAM), frame])
    return frame


def _summary(total: int, trainable: int, step_seconds: float, stages, failures: int = 0) -> dict:
    return {"adapter_parameters": {"adapter_total": total, "adapter_trainable": trainable},
            "trainable_per_stage": [trainable] * len(stages), "step_seconds_median": step_seconds,
            "train_seconds": 10.0, "wall_seconds": 12.0, "stages": list(stages),
            "parse_failures": {s: {"t": 0} for s in stages[:-1]} | {stages[-1]: {"t": failures}}}


def write_fixture(results_dir: str | Path) -> Path:
    """Write the fixture runs under ``<results_dir>/runs/`` and return ``results_dir``."""
    from cvitkit.profiles import REPO_ROOT

    results_dir = Path(results_dir).resolve()
    if (REPO_ROOT / "results").resolve() in (results_dir, *results_dir.parents):
        raise ValueError(f"refusing to write the test fixture into the repository's results folder ({results_dir}).")

    # CoIN ------------------------------------------------------------------------------------------
    write_run(results_dir, "coin/branchlora", _triangle(COIN, [80.0] * 8, 5.0),
              summary=_summary(123456, 23456, 0.0425, COIN, failures=3),
              statistics={f"{t:03d}": {"selector_accuracy": {**{c: 100.0 for c in COIN[:-1]}, COIN[-1]: 50.0,
                                                             "overall": 93.75},
                                       "expert_usage": {LAYERS[0]: [0.5, 0.5, 0, 0, 0, 0, 0, 0],
                                                        LAYERS[1]: [0.25, 0.25, 0.25, 0.25, 0, 0, 0, 0]}}
                          for t in range(1, 9)},
              config=_config("coin/branchlora", rank=32, alpha=64, n_branches=8, top_k=2, align_lambda=1.0))
    write_run(results_dir, "coin/moelora", _triangle(COIN, [70.0] * 8, 4.0),
              summary=_summary(200000, 200000, 0.05, COIN), config=_config("coin/moelora"))
    write_run(results_dir, "coin/multitask",
              pd.DataFrame([[90.0, 80, 70, 60, 90, 80, 70, 60]], index=["joint"], columns=COIN),
              metrics={"MFN": 75.0, "MAA": 75.0, "MFT": None, "BWT": None},
              summary=_summary(100000, 100000, 0.03, ["joint"]), config=_config("coin/multitask"))
    write_run(results_dir, "coin/zero_shot", pd.DataFrame([[10.0] * 8], index=["initial"], columns=COIN),
              summary={"adapter_parameters": {}, "stages": ["initial"]}, config=_config("coin/zero_shot"))
    write_run(results_dir, "coin/lora_ft", _triangle(COIN, [60.0] * 8, 10.0).iloc[:3],
              summary=_summary(50000, 50000, 0.02, COIN[:3]), config=_config("coin/lora_ft"))

    # StrCVIT stream ---------------------------------------------------------------------------------
    usage = {"001": {"expert_usage": {LAYERS[0]: [0.25, 0.25, 0.25, 0.25], LAYERS[1]: [0.5, 0.5, 0.0, 0.0]}},
             "002": {"expert_usage": {LAYERS[0]: [0.5, 0.5, 0.0, 0.0], LAYERS[1]: [0.5, 0.5, 0.0, 0.0]}}}
    write_run(results_dir, "strcvit_25chunks/strlora", _stream(25, 40.0, 10.0, initial=True),
              summary=_summary(40000, 30000, 0.08, [f"chunk_{t:03d}" for t in range(1, 26)]), statistics=usage,
              config=_config("strcvit_25chunks/strlora"))
    write_run(results_dir, "strcvit_25chunks/moelora", _stream(25, 30.0, 0.0, initial=False),
              summary=_summary(32000, 32000, 0.06, [f"chunk_{t:03d}" for t in range(1, 26)]),
              statistics={"025": {"expert_usage": {LAYERS[0]: [0.25] * 4, LAYERS[1]: [0.25] * 4}}},
              config=_config("strcvit_25chunks/moelora"))
    write_run(results_dir, "strcvit_25chunks/lora_ft", _stream(10, 20.0, 0.0, initial=False),
              summary=_summary(8000, 8000, 0.01, [f"chunk_{t:03d}" for t in range(1, 11)]),
              config=_config("strcvit_25chunks/lora_ft"))

    # MLLM-CL DCL -------------------------------------------------------------------------------------
    write_run(results_dir, "mllmcl_dcl/mr_lora", _triangle(DCL, [90.0, 80.0, 70.0, 60.0, 50.0], 1.0),
              summary=_summary(64000, 12800, 0.04, DCL),
              statistics={"005": {"router_accuracy": {"RS": 100.0, "Med": 90.0, "AD": 80.0, "Sci": 70.0, "Fin": 60.0,
                                                      "overall": 80.0}}},
              config=_config("mllmcl_dcl/mr_lora"))
    write_run(results_dir, "mllmcl_dcl/lora_ft", _triangle(DCL, [85.0] * 5, 10.0),
              summary=_summary(12800, 12800, 0.02, DCL), config=_config("mllmcl_dcl/lora_ft"))

    # UCIT ----------------------------------------------------------------------------------------------
    write_run(results_dir, "ucit/cram", _triangle(UCIT, [70.0] * 6, 2.0),
              summary=_summary(5000, 900, 0.05, UCIT),
              statistics={"006": {"ranks": {LAYERS[0]: [4, 5, 6, 7, 8, 9], LAYERS[1]: [4, 4, 4, 4, 4, 4]}}},
              config=_config("ucit/cram", rank_max=4, rank_min=2, delta_threshold=0.1, rbf_sigma=2.0))
    write_run(results_dir, "ucit/lora_ft", _triangle(UCIT, [75.0] * 6, 6.0),
              summary=_summary(2000, 2000, 0.02, UCIT), config=_config("ucit/lora_ft"))
    return results_dir
