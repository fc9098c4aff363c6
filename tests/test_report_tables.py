"""Table regeneration from a small fixed results fixture: every checked cell is computed by hand.

The fixture (cvitkit.report.testing) uses closed-form matrices:
* CoIN BranchLoRA: R[t,i] = 80 - 5 (t - i) on the lower triangle (T = 8); MoELoRA: 70 - 4 (t - i);
* StrCVIT StrLoRA: s[t,k] = 40 + k + (10 if chunk t is odd else 0), k = column position, plus an
  ``initial`` row of zeros that must be ignored;
* DCL MR-LoRA: diagonal 90, 80, 70, 60, 50 and R[t,i] = R[i,i] - (t - i).
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from cvitkit.report import RunStore, build_table, paper_tables
from cvitkit.report.testing import write_fixture


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return RunStore(write_fixture(tmp_path_factory.mktemp("report_fixture")))


def table(paper: str, table_id: str, store):
    spec = next(t for t in paper_tables(paper) if t.id == table_id)
    return build_table(spec, store)


def measured(result, row, column):
    origin = "kit config" if f"{column} (kit config)" in result.data.columns else "measured"
    value = result.data.loc[row, f"{column} ({origin})"]
    return None if pd.isna(value) else value


def reported(result, row, column):
    [label] = [c for c in result.reported_columns if c.startswith(f"{column} (reported: ")]
    return result.data.loc[row, label]


# ------------------------------------------------------------------------------------------ BranchLoRA

def test_branchlora_main_cells_match_hand_computation(store):
    result = table("branchlora", "branchlora_main", store)
    # final row R[8, i] = 80 - 5 (8 - i): 45, 50, ..., 80
    assert measured(result, "BranchLoRA", "ScienceQA") == 45.0
    assert measured(result, "BranchLoRA", "OCR-VQA") == 80.0  # the run's column is spelled "OCRVQA"
    assert measured(result, "BranchLoRA", "ACC") == pytest.approx((45 + 50 + 55 + 60 + 65 + 70 + 75 + 80) / 8)  # 62.5
    # MAA: stage t mean = 80 - 5 (t - 1) / 2; mean over t = 80 - 2.5 * 3.5
    assert measured(result, "BranchLoRA", "MAA") == pytest.approx(71.25)
    # BWT: mean over i = 1..7 of -5 (8 - i) = -5 * 4
    assert measured(result, "BranchLoRA", "BWT") == pytest.approx(-20.0)
    assert measured(result, "MoELoRA", "ACC") == pytest.approx(56.0)
    assert measured(result, "MoELoRA", "MAA") == pytest.approx(63.0)
    assert measured(result, "MoELoRA", "BWT") == pytest.approx(-16.0)
    assert measured(result, "BranchLoRA", "tunable params") == 123456
    # single-stage runs: multitask (joint) and zero-shot (only an "initial" row)
    assert measured(result, "Multi-task", "ACC") == pytest.approx(75.0)
    assert measured(result, "Multi-task", "MAA") == pytest.approx(75.0)
    assert measured(result, "Multi-task", "BWT") is None
    assert measured(result, "Zero-shot", "ACC") == pytest.approx(10.0)
    # reported numbers sit beside, as transcribed
    assert reported(result, "BranchLoRA", "ACC") == "44.20"
    assert reported(result, "MoELoRA", "tunable params") == "350M"
    assert reported(result, "Zero-shot", "MAA") == "7.12"
    assert "ACC (reported: secondary)" in result.reported_columns


def test_missing_and_incomplete_runs_never_raise(store):
    result = table("branchlora", "branchlora_main", store)
    assert result.data.loc["LwF", "run status"] == "not run"
    assert result.display.loc["LwF", "ACC (measured)"] == "not run"
    assert pd.isna(result.data.loc["LwF", "ACC (measured)"])
    # coin/lora_ft has 3 of 8 stages: no final metric, and the notes say why
    assert measured(result, "LoRA", "ACC") is None
    assert result.display.loc["LoRA", "ACC (measured)"] == "—"
    assert any("incomplete run (3 of 8 stages)" in r for r in result.empty_reasons)
    assert result.measured_info["parse_failures"] == {"coin/branchlora": 3}


def test_branchlora_efficiency_selector_and_hparams(store):
    eff = table("branchlora", "branchlora_efficiency", store)
    assert measured(eff, "BranchLoRA", "training time (ms / batch)") == pytest.approx(42.5)
    assert measured(eff, "MoELoRA", "tunable params") == 200000
    assert measured(eff, "BranchLoRA", "trainable params (last task)") == 23456
    assert reported(eff, "BranchLoRA", "training time (ms / batch)") == "51"
    sel = table("branchlora", "branchlora_selector", store)
    assert measured(sel, "BranchLoRA", "task-selector accuracy (%)") == pytest.approx(93.75)
    assert measured(sel, "BranchLoRA", "OCR-VQA") == pytest.approx(50.0)
    assert reported(sel, "BranchLoRA", "task-selector accuracy (%)") == "95.8"
    hp = table("branchlora", "branchlora_hparams", store)
    assert measured(hp, "LoRA rank r", "value") == 32 and reported(hp, "LoRA rank r", "value") == "128"
    assert "value (kit config)" in hp.data.columns


# ------------------------------------------------------------------------------------------ StrLoRA

AP_OFFSETS = {"AD": 0, "Fin": 2, "RS": 8, "ImageNet": 5, "VQAv2": 10, "Places365": 7, "TextCaps": 9, "OCRVQA": 6,
              "Grounding": 4}  # column positions of the 9 AP tasks; GQA (3) and ChartQA (1) are excluded


def _hand_map(n: int) -> float:
    odd = (n + 1) // 2
    return 40 + sum(AP_OFFSETS.values()) / 9 + 10 * odd / n


def _hand_maf(n: int) -> float:
    # after chunk 1 (odd, the maximum), every even chunk is 10 below it and every odd chunk equal
    evens = n // 2
    return 10 * evens / (n - 1)


@pytest.mark.parametrize("n", [15, 20, 25])
def test_strlora_main_uses_the_first_n_chunks(store, n):
    result = table("strlora", f"strlora_main_{n}", store)
    assert measured(result, "StrLoRA", "MAP") == pytest.approx(_hand_map(n))
    assert measured(result, "StrLoRA", "MAF") == pytest.approx(_hand_maf(n))
    # per-task AP: the task's score averaged over chunks 1..n ("Places" in the run = Places365)
    bonus = 10 * ((n + 1) // 2) / n
    assert measured(result, "StrLoRA", "RS") == pytest.approx(48 + bonus)
    assert measured(result, "StrLoRA", "Places365") == pytest.approx(47 + bonus)
    assert measured(result, "MoELoRA", "MAP") == pytest.approx(30 + 51 / 9)
    assert measured(result, "MoELoRA", "MAF") == pytest.approx(0.0)
    # the LoRA stream has only 10 chunks: no cell, a reason
    assert measured(result, "LoRA", "MAP") is None
    assert "Replay" not in result.data.index  # optional row, not run, nothing reported


def test_strlora_hand_values_and_reported_columns(store):
    assert _hand_map(15) == pytest.approx(51.0)
    r15 = table("strlora", "strlora_main_15", store)
    assert reported(r15, "StrLoRA", "MAP") == "59.99"
    assert reported(r15, "StrLoRA", "RS") == "67.45"
    assert reported(r15, "StrLoRA", "Places365") == "32.42"
    assert [c for c in r15.reported_columns if c.startswith("MAP")] == ["MAP (reported: seed)"]
    r25 = table("strlora", "strlora_main_25", store)
    assert reported(r25, "StrLoRA", "MAP") == "65.37" and reported(r25, "StrLoRA", "MAF") == "1.91"
    assert "MAP (reported: secondary)" in r25.reported_columns
    r20 = table("strlora", "strlora_main_20", store)
    assert reported(r20, "StrLoRA", "MAP") == "61.22"
    assert not any(c.startswith("Places365 (reported") for c in r20.reported_columns)  # 33.37 has no length


def test_strlora_routing_and_efficiency(store):
    routing = table("strlora", "strlora_routing", store)
    # last stage: layer 0 [.5,.5,0,0], layer 1 [.5,.5,0,0] → H/ln4 = ln2/ln4 = 0.5; max share 0.5
    assert measured(routing, "StrLoRA", "usage entropy") == pytest.approx(0.5)
    assert measured(routing, "StrLoRA", "max expert share") == pytest.approx(0.5)
    # drift: layer 0 moves 0.5 (total variation), layer 1 does not → 0.25
    assert measured(routing, "StrLoRA", "routing drift") == pytest.approx(0.25)
    assert measured(routing, "MoELoRA", "usage entropy") == pytest.approx(1.0)
    assert measured(routing, "MoELoRA", "routing drift") is None  # one stage only
    eff = table("strlora", "strlora_efficiency", store)
    assert measured(eff, "StrLoRA", "ms per step") == pytest.approx(80.0)
    assert measured(eff, "StrLoRA", "adapter params") == 40000


# ------------------------------------------------------------------------------------------ MLLM-CL

def test_mllmcl_dcl_and_router(store):
    result = table("mllmcl", "mllmcl_dcl", store)
    assert measured(result, "MR-LoRA", "MFT") == pytest.approx(70.0)      # mean of 90, 80, 70, 60, 50
    assert measured(result, "MR-LoRA", "MFN") == pytest.approx(68.0)      # mean of 86, 77, 68, 59, 50
    assert measured(result, "MR-LoRA", "MAA") == pytest.approx(79.0)      # (90 + 84.5 + 79 + 73.5 + 68) / 5
    assert measured(result, "MR-LoRA", "BWT") == pytest.approx(-2.5)      # mean of -4, -3, -2, -1
    assert measured(result, "MR-LoRA", "Med") == pytest.approx(77.0)
    assert result.reported_columns == []  # no MLLM-CL number is known
    router = table("mllmcl", "mllmcl_router_dcl", store)
    assert measured(router, "MR-LoRA", "overall") == pytest.approx(80.0)
    assert measured(router, "MR-LoRA", "Sci") == pytest.approx(70.0)


# ------------------------------------------------------------------------------------------ CRAM

def test_cram_tables(store):
    ucit = table("cram", "cram_ucit", store)
    assert measured(ucit, "CRAM", "Last") == pytest.approx(70 - 2 * 2.5)  # mean of 70 - 2 (6 - i)
    assert measured(ucit, "CRAM", "BWT") == pytest.approx(-2 * 3.0)       # mean of -2 (6 - i), i = 1..5
    assert reported(ucit, "CRAM", "ImageNet-R") == "87.23"
    params = table("cram", "cram_param_efficiency", store)
    assert measured(params, "CRAM", "x LoRA-FT") == pytest.approx(2.5)     # 5000 / 2000
    assert measured(params, "LoRA-FT", "x LoRA-FT") == pytest.approx(1.0)
    ranks = table("cram", "cram_ranks", store)
    assert measured(ranks, "expert 6 (Flickr30k)", "mean rank") == pytest.approx(6.5)
    assert measured(ranks, "expert 6 (Flickr30k)", "max rank") == 9
    assert measured(ranks, "expert 1 (ImageNet-R)", "min rank") == 4
    mmmu = table("cram", "cram_mmmu", store)
    assert mmmu.measured_columns == [] and reported(mmmu, "CRAM", "Art") == "44.51"
    hp = table("cram", "cram_hparams", store)
    assert measured(hp, "expert max rank", "value") == 4
    assert reported(hp, "expert max rank", "value") == "9 (UCIT) / 10 (TriGap)"


def test_every_table_builds_from_an_empty_results_folder(tmp_path):
    empty = RunStore(tmp_path)
    for paper in ("strlora", "branchlora", "mllmcl", "cram"):
        for spec in paper_tables(paper):
            result = build_table(spec, empty)
            for column in result.measured_columns:
                assert result.data[column].isna().all(), (spec.id, column)
                assert set(result.display[column]) <= {"not run", "n/a"}, (spec.id, column)
            assert set(result.data["run status"]) <= {"not run", "no kit analogue"}


def test_no_nan_strings_in_outputs(store):
    for paper in ("strlora", "branchlora", "mllmcl", "cram"):
        for spec in paper_tables(paper):
            result = build_table(spec, store)
            for column in result.display.columns:
                assert not any(isinstance(v, float) and math.isnan(v) for v in result.display[column]), spec.id
                assert "nan" not in {str(v).lower() for v in result.display[column]}, (spec.id, column)


def _table_run_ids() -> set[str]:
    return {r for p in ("strlora", "branchlora", "mllmcl", "cram") for t in paper_tables(p) for r in t.run_ids}


def test_table_run_ids_follow_the_run_contract():
    """Run ids are ``<suite>/<method>[__<variant>]`` with the registered method names."""
    import re

    from cvitkit.methods.base import available_methods

    methods = set(available_methods())
    suites = {"coin", "mllmcl_dcl", "mllmcl_acl", "strcvit_25chunks", "ucit", "trigap"}
    for run_id in _table_run_ids():
        match = re.fullmatch(r"([a-z0-9_]+)/([a-z_]+?)(?:__([a-z0-9_]+))?", run_id)
        assert match and match.group(1) in suites and match.group(2) in methods, run_id


def test_table_variants_are_declared_with_their_method():
    """Every ``<method>__<variant>`` a table needs resolves through ``configs/methods/<method>.yaml``."""
    from cvitkit.errors import ConfigError
    from cvitkit.experiments import resolve_run

    missing = []
    for run_id in sorted({r.split("/", 1)[1] for r in _table_run_ids() if "__" in r}):
        try:
            resolve_run(run_id)
        except ConfigError:
            missing.append(run_id)
    assert not missing, f"variants used by the tables but not declared in configs/methods/*.yaml: {missing}"


def test_deltas_are_measured_minus_reported_and_labelled(store):
    spec = next(t for t in paper_tables("branchlora") if t.id == "branchlora_main")
    result = build_table(spec, store, deltas=True)
    assert "ACC delta (measured - reported)" in result.delta_columns
    assert result.data.loc["BranchLoRA", "ACC delta (measured - reported)"] == pytest.approx(62.5 - 44.20)
    assert pd.isna(result.data.loc["LwF", "ACC delta (measured - reported)"])  # not run: no delta
    assert "tunable params delta (measured - reported)" not in result.data.columns  # "222M" is not a number
