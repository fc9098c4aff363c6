"""Ablations: one method trained with and without each switch on one suite (notebook 20).

A *switch* is either a variant declared in ``configs/methods/<method>.yaml`` (run id
``<method>__<variant>``, the same run folder the pipeline trains, so its run is reused) or a named
dict of config overrides, trained as variant ``abl-<name>`` so that it can never overwrite a declared
variant's run. Every arm goes through :func:`cvitkit.runner.run_named` / :func:`run_method`, which
resume a finished run instead of training it again.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cvitkit.errors import ConfigError

BASELINE = "without switches"
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class Arm:
    """One row of an ablation: a label, how it is run, and what it changes."""

    name: str
    run_id: str = ""  # declared run (method or method__variant); empty for an overrides-only arm
    overrides: dict = field(default_factory=dict)
    description: str = ""

    @property
    def variant(self) -> str:
        """Run-folder variant of an overrides arm (prefixed: never a declared variant's folder)."""
        return f"abl-{self.name}"


def ablation_arms(method: str, switches) -> list[Arm]:
    """The baseline arm plus one arm per switch.

    ``switches``: a list of declared variant names (``["sparse", "freeze"]``), a dict
    ``{name: {field: value}}`` of config overrides, or ``"all"`` for every declared variant that only
    overrides config fields (variants that swap the model are not ablations of the method).
    """
    from cvitkit.experiments import resolve_run, variants

    resolve_run(method)  # clear error for an unknown method
    arms = [Arm(BASELINE, run_id=method, description=f"{method} with its preset settings")]
    if switches == "all":
        switches = [v for v, spec in variants(method).items() if not (spec or {}).get("model")]
    if isinstance(switches, str):
        switches = [switches]
    if isinstance(switches, dict):
        for name, overrides in switches.items():
            if not _NAME.match(str(name)):
                raise ConfigError(f"ablation switch name {name!r}: use letters, digits, '_' or '-' only "
                                  "(it becomes part of a run folder name).")
            if not isinstance(overrides, dict) or not overrides:
                raise ConfigError(f"ablation switch {name!r}: give a non-empty dict of {method} config overrides, "
                                  f"e.g. {{'{name}': {{'rank': 4}}}}; got {overrides!r}.")
            arms.append(Arm(str(name), overrides=dict(overrides),
                            description=", ".join(f"{k}={v!r}" for k, v in overrides.items())))
        return arms
    for name in switches:
        spec = resolve_run(f"{method}__{name}")  # raises with the declared variants listed
        arms.append(Arm(name, run_id=spec.run_id, overrides=spec.overrides,
                        description=spec.description or json.dumps(spec.overrides)))
    return arms


def run_ablation(profile, suite: str, method: str, switches, stream_length: int | None = None, force: bool = False,
                 log=print) -> dict[str, object]:
    """Train (or resume) every arm; returns ``{arm name: RunResult}`` in arm order."""
    from cvitkit.profiles import load_profile
    from cvitkit.runner import run_method, run_named

    profile = load_profile(profile) if isinstance(profile, str) else profile
    results = {}
    for arm in ablation_arms(method, switches):
        log(f"=== {suite} / {method}: {arm.name}")
        if arm.run_id:
            results[arm.name] = run_named(profile, suite, arm.run_id, stream_length=stream_length, force=force,
                                          log=log)
        else:
            results[arm.name] = run_method(profile, suite, method, overrides=arm.overrides, variant=arm.variant,
                                           stream_length=stream_length, force=force, log=log)
    return results


def headline_metrics(metrics: dict) -> list[str]:
    """The summary metrics a run has: MAP/MAF for streams, ACC (=MFN)/MAA/BWT otherwise."""
    return ["MAP", "MAF"] if "MAP" in metrics else ["ACC", "MAA", "BWT"]


def ablation_table(results: dict, arms: list[Arm] | None = None) -> pd.DataFrame:
    """One row per arm: final score per task, summary metrics, trainable parameters, train time, and
    the change of the first summary metric against the baseline arm (measured numbers only)."""
    descriptions = {a.name: a.description for a in arms or []}
    rows = []
    for name, res in results.items():
        m = dict(res.metrics)
        if "MFN" in m:
            m["ACC"] = m["MFN"]  # the papers name the mean final accuracy ACC (BranchLoRA) or MFN (MLLM-CL)
        trained = res.matrix.drop(index="initial", errors="ignore")
        final = trained.iloc[-1] if len(trained) else pd.Series(dtype=float)
        params = res.summary.get("adapter_parameters", {})
        rows.append({"arm": name, "changes": descriptions.get(name, ""),
                     **{f"final {t}": final.get(t) for t in res.matrix.columns},
                     **{k: m.get(k) for k in headline_metrics(m)},
                     "trainable params": params.get("adapter_trainable"),
                     "adapter params": params.get("adapter_total"),
                     "train s": res.summary.get("train_seconds"),
                     "ms / step": 1000 * (res.summary.get("step_seconds_median") or 0),
                     "run": _run_label(res.run_dir)})
    table = pd.DataFrame(rows).set_index("arm")
    if BASELINE in table.index and not table.empty:
        key = headline_metrics(next(iter(results.values())).metrics)[0]
        table[f"Δ {key} vs baseline"] = table[key] - table.loc[BASELINE, key]
    return table


def _run_label(run_dir: Path) -> str:
    return "/".join(Path(run_dir).parts[-2:])


def write_ablation(table: pd.DataFrame, out_dir: Path, suite: str, method: str, caption: str = "") -> list[Path]:
    """``<out_dir>/tables/ablation_<suite>_<method>.csv`` and ``.md`` (CSV full precision, Markdown rounded)."""
    tables = Path(out_dir) / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    stem = tables / f"ablation_{suite}_{method}"
    table.to_csv(stem.with_suffix(".csv"), float_format="%.4f")
    md = f"{caption}\n\n" if caption else ""
    stem.with_suffix(".md").write_text(md + table.round(2).to_markdown() + "\n")
    return [stem.with_suffix(".csv"), stem.with_suffix(".md")]


def ablation_figure(table: pd.DataFrame, title: str):
    """Seaborn grouped bars: each summary metric (x) per arm (hue); None when there is nothing to draw."""
    import seaborn as sns

    from cvitkit.report.plots import _plt

    metrics = [c for c in ("ACC", "MAA", "BWT", "MAP", "MAF") if c in table.columns]
    long = table[metrics].reset_index().melt(id_vars="arm", var_name="metric", value_name="score").dropna()
    if long.empty:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(metrics) + 0.3 * len(table), 3.6))
    sns.barplot(data=long, x="metric", y="score", hue="arm", ax=ax)
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_title(title)
    ax.set_ylabel("score (points)")
    ax.legend(fontsize=7, title=None)
    return fig


def task_figure(table: pd.DataFrame, title: str):
    """Seaborn grouped bars of the final score of each task per arm; None when no task was scored."""
    import seaborn as sns

    from cvitkit.report.plots import _plt

    cols = [c for c in table.columns if c.startswith("final ")]
    long = table[cols].reset_index().melt(id_vars="arm", var_name="task", value_name="score").dropna()
    if long.empty:
        return None
    long["task"] = long["task"].str.removeprefix("final ")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(2 + 0.9 * len(cols) + 0.2 * len(table), 3.6))
    sns.barplot(data=long, x="task", y="score", hue="arm", ax=ax)
    ax.set_title(title)
    ax.set_ylabel("final score (points)")
    ax.tick_params(axis="x", rotation=30)
    ax.legend(fontsize=7, title=None)
    return fig
