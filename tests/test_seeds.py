"""Seed spread of repeated runs, and the train section of a run variant that makes the repeats."""

import pandas as pd
import pytest

from cvitkit.errors import ConfigError
from cvitkit.experiments import resolve_run
from cvitkit.report.seeds import seed_groups, seed_spread


def test_groups_gather_each_run_with_its_seed_repeats_in_seed_order():
    ids = ["coin/lora_ft", "coin/lora_ft__seed10", "coin/lora_ft__seed2", "coin/lora_ft__e3", "coin/replay__seed1"]
    assert seed_groups(ids) == {"coin/lora_ft": ["coin/lora_ft", "coin/lora_ft__seed2", "coin/lora_ft__seed10"],
                                "coin/replay": ["coin/replay__seed1"]}


def test_spread_matches_a_hand_computation():
    metrics = pd.DataFrame({"MFN": [10.0, 12.0, 14.0, 30.0], "BWT": [-20.0, -18.0, -22.0, 0.0]},
                           index=["s/lora_ft", "s/lora_ft__seed1", "s/lora_ft__seed2", "s/multitask"])
    table = seed_spread(metrics)
    assert list(table.index) == ["s/lora_ft"]                      # multitask has no repeat
    row = table.loc["s/lora_ft"]
    assert row["seeds"] == 3
    assert row["MFN mean"] == 12.0 and row["MFN sd"] == pytest.approx(2.0)      # sqrt((4 + 0 + 4) / 2)
    assert (row["BWT min"], row["BWT max"]) == (-22.0, -18.0)
    assert "MFT mean" not in table.columns                           # metrics absent from the input are skipped


def test_a_variant_train_section_sets_the_seed_and_rejects_unknown_keys(tmp_path):
    spec = resolve_run("lora_ft__seed1")
    assert spec.train == {"seed": 1} and spec.overrides == {}
    (tmp_path / "lora_ft.yaml").write_text("method: lora_ft\nvariants:\n  bad:\n    train: {sede: 1}\n")
    with pytest.raises(ConfigError, match=r"unknown train key\(s\) \['sede'\].*seed"):
        resolve_run("lora_ft__bad", config_dir=tmp_path)
    (tmp_path / "lora_ft.yaml").write_text("method: lora_ft\nvariants:\n  bad:\n    train: 3\n")
    with pytest.raises(ConfigError, match=r"'train' must be a mapping.*\{seed: 1\}"):
        resolve_run("lora_ft__bad", config_dir=tmp_path)


def test_run_named_trains_a_seed_variant_with_its_seed(monkeypatch):
    from cvitkit import runner

    seen = {}
    monkeypatch.setattr(runner, "run_method", lambda profile, suite, method, **kw: seen.update(
        seed=profile.train.seed, method=method, variant=kw["variant"]))
    runner.run_named("smoke", "coin", "replay__seed2")
    assert seen == {"seed": 2, "method": "replay", "variant": "seed2"}


def test_seed_figure_draws_one_panel_per_metric_and_needs_a_repeat():
    from cvitkit.report.plots import seed_figure

    metrics = pd.DataFrame({"MFN": [10.0, 12.0, 30.0], "BWT": [-20.0, -18.0, 0.0]},
                           index=["s/lora_ft", "s/lora_ft__seed1", "s/multitask"])
    fig = seed_figure(metrics, "spread")
    assert [ax.get_ylabel() for ax in fig.axes] == ["MFN", "BWT"]
    assert len(fig.axes[0].collections[0].get_offsets()) == 2           # the two seeds of lora_ft as points
    assert seed_figure(metrics.loc[["s/lora_ft", "s/multitask"]], "no repeats") is None


def test_seed_figure_jitter_is_the_same_every_time():
    import numpy as np

    from cvitkit.report.plots import seed_figure

    metrics = pd.DataFrame({"MFN": [1.0, 2.0, 3.0], "BWT": [-1.0, -2.0, -3.0]}, index=["s/a", "s/a__seed1", "s/a__seed2"])

    def offsets():
        fig = seed_figure(metrics, "t")
        return [c.get_offsets().copy() for ax in fig.axes for c in ax.collections]

    np.random.seed(1)
    first = offsets()
    np.random.seed(2)  # whatever the caller's generator state
    assert all(np.array_equal(a, b) for a, b in zip(first, offsets())) and first
