"""Figures from measured runs (seaborn): accuracy-matrix heatmaps, forgetting curves, routing
distributions, StrLoRA AP-over-chunks curves, CRAM per-layer ranks, router accuracy.

Each ``*_figure`` function takes runs (:class:`~cvitkit.report.results.Run`) and returns a matplotlib
Figure, or None when the runs hold no data for it. :func:`save_figure` stamps the figure with its
provenance (profile, runs, commit) and writes a PNG. Only measured numbers are drawn here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cvitkit.report.results import Run

__all__ = ["answer_form_figure", "ap_curves_figure", "expert_usage_figure", "forgetting_figure", "learnability_figure",
           "matrix_figure", "ranks_figure", "router_accuracy_figure", "save_figure", "short_layer_name"]


def _plt():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        try:
            matplotlib.use("Agg")
        except Exception:  # noqa: BLE001 - keep the interactive backend if switching is refused
            pass
    import matplotlib.pyplot as plt

    return plt


def short_layer_name(name: str) -> str:
    """``model.language_model.layers.1.self_attn.q_proj`` → ``L1.q_proj``."""
    match = re.search(r"layers\.(\d+)\.(?:.*\.)?([A-Za-z0-9_]+)$", name)
    return f"L{match.group(1)}.{match.group(2)}" if match else name[-24:]


def save_figure(fig, path: str | Path, stamp: str, title: str = "") -> Path:
    """Write ``fig`` as PNG with a provenance line at its foot and in the PNG metadata; closes it."""
    plt = _plt()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.text(0.005, 0.003, stamp, fontsize=6, color="0.4", ha="left", va="bottom")
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120, bbox_inches="tight", metadata={"Title": title, "Description": stamp,
                                                              "Software": "cvitkit.report"})
    plt.close(fig)
    tmp.replace(path)
    return path


def matrix_figure(run: Run, title: str):
    """Heatmap of the accuracy matrix (rows = stages, columns = tasks; blank = not evaluated)."""
    if not run.exists:
        return None
    return _percent_heatmap(run.matrix, title, "task (evaluated)", "after stage", "score (%)", fmt=".1f",
                            cmap="viridis", annot_cells=120, size=((0.75, 2.0, 4.5), (0.32, 1.5, 3.0)))


def _percent_heatmap(data: pd.DataFrame, title: str, xlabel: str, ylabel: str, bar_label: str, fmt: str,
                     cmap: str, annot_cells: int, size, rotate: int = 0):
    """A 0-100 heatmap annotated while it has at most ``annot_cells`` cells; ``size`` gives per-cell
    inches, margin and minimum for the width and the height."""
    plt = _plt()
    import seaborn as sns

    rows, cols = data.shape
    (w_cell, w_pad, w_min), (h_cell, h_pad, h_min) = size
    fig, ax = plt.subplots(figsize=(max(w_min, w_cell * cols + w_pad), max(h_min, h_cell * rows + h_pad)))
    sns.heatmap(data, annot=rows * cols <= annot_cells, fmt=fmt, cmap=cmap, vmin=0, vmax=100, ax=ax,
                cbar_kws={"label": bar_label}, annot_kws={"fontsize": 7})
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if rotate:
        ax.tick_params(axis="x", rotation=rotate)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def forgetting_figure(run: Run, title: str):
    """Each task's score over the stages (a falling line after the task's own stage = forgetting)."""
    trained = run.trained if run.exists else pd.DataFrame()
    if len(trained) < 2:
        return None
    plt = _plt()
    import seaborn as sns

    long = trained.reset_index(names="stage").melt(id_vars="stage", var_name="task", value_name="score").dropna()
    long["stage"] = pd.Categorical(long["stage"], categories=list(trained.index), ordered=True)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.5 * len(trained) + 3), 3.6))
    sns.lineplot(data=long, x="stage", y="score", hue="task", marker="o", ax=ax)
    ax.set_ylim(0, 100)
    ax.set_ylabel("score (%)")
    ax.set_xlabel("after stage")
    ax.tick_params(axis="x", rotation=45)
    ax.legend(fontsize=7, ncol=2, loc="best")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


#: Learnability-table columns drawn by :func:`learnability_figure`, with their legend labels.
LEARNABILITY_SERIES = {"LoRA-FT R_tt": "LoRA-FT, 1 epoch", "LoRA-FT 3 epochs R_tt": "LoRA-FT, 3 epochs",
                       "multitask": "multitask (joint)"}


def learnability_figure(table: pd.DataFrame, title: str, margin: float = 10.0):
    """Points above the bar (the highest of the best constant answer and the two question priors), per task, for
    each fine-tune score the learnability table holds (:func:`cvitkit.report.learnability.learnability_table`);
    the dashed line is the margin a learned task clears."""
    present = [c for c in LEARNABILITY_SERIES if c in table and table[c].notna().any()]
    if table.empty or not present:
        return None
    plt = _plt()
    import seaborn as sns

    from cvitkit.report.learnability import table_bar

    bar = table_bar(table)
    long = pd.DataFrame([{"task": task, "score": LEARNABILITY_SERIES[c], "above": row[c] - bar[task]}
                         for task, row in table.iterrows() for c in present if pd.notna(row[c])])
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(table) + 2), 3.6))
    sns.barplot(data=long, x="task", y="above", hue="score", ax=ax)
    ax.axhline(margin, ls="--", color="0.3", lw=1)
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set_ylabel("points above the bar")
    ax.set_xlabel("")
    ax.legend(fontsize=7, loc="best")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def seed_figure(metrics: pd.DataFrame, title: str, columns: Sequence[str] = ("MFN", "BWT")):
    """One panel per metric: every seed of each repeated run as a point, its mean as a bar
    (:func:`cvitkit.report.seeds.seed_groups` finds the repeats)."""
    from cvitkit.report.seeds import seed_groups

    groups = seed_groups(metrics.index)
    columns = [c for c in columns if c in metrics.columns]
    if not groups or not columns:
        return None
    plt = _plt()
    import seaborn as sns

    long = pd.DataFrame([{"run": run.split("/", 1)[-1], "metric": c, "value": float(metrics.loc[m, c])}
                         for run, members in groups.items() for m in members for c in columns])
    fig, axes = plt.subplots(1, len(columns), figsize=(3.0 * len(columns) + 1.0, 3.4), squeeze=False)
    state = np.random.get_state()
    np.random.seed(0)  # seaborn jitters with numpy's global generator: fixed, so the PNG regenerates byte for byte
    for ax, column in zip(axes[0], columns):
        part = long[long["metric"] == column]
        sns.barplot(data=part, x="run", y="value", errorbar=None, color="0.85", ax=ax)
        sns.stripplot(data=part, x="run", y="value", color="0.15", size=5, jitter=0.15, ax=ax)
        ax.set_xlabel("")
        ax.set_ylabel(column)
        ax.tick_params(axis="x", rotation=30, labelsize=8)
    np.random.set_state(state)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def answer_form_figure(table: pd.DataFrame, title: str):
    """Heatmap of each run's answer-form share per task after the last stage
    (:func:`cvitkit.report.answer_forms.form_table`): a dark cell is a task the run no longer answers
    in the asked-for form."""
    from cvitkit.report.answer_forms import SUMMARY_COLUMNS

    tasks = [c for c in table.columns if c not in SUMMARY_COLUMNS] if not table.empty else []
    if not tasks:
        return None
    data = table[tasks].astype(float)
    data.index = [r.split("/", 1)[-1] for r in data.index]
    return _percent_heatmap(data, title, "task (after the last stage)", "run", "answers in the asked-for form (%)",
                            fmt=".0f", cmap="mako", annot_cells=200, size=((0.75, 2.5, 4.5), (0.3, 1.4, 2.6)),
                            rotate=30)


def expert_usage_figure(runs: Mapping[str, Run], title: str):
    """Expert usage per layer at the last stage (fraction of gate mass), one heatmap per run."""
    from cvitkit.report.columns import _usage

    panels = []
    for label, run in runs.items():
        usage = _usage(run.last_statistic("expert_usage")) if run.exists else {}
        if usage:
            width = max(p.size for p in usage.values())
            frame = pd.DataFrame([np.pad(p, (0, width - p.size), constant_values=np.nan) for p in usage.values()],
                                 index=[short_layer_name(k) for k in usage], columns=[f"E{i}" for i in range(width)])
            panels.append((label, frame))
    if not panels:
        return None
    plt = _plt()
    import seaborn as sns

    height = max(3.0, 0.22 * max(len(f) for _, f in panels) + 1.5)
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels) + 1.5, height), squeeze=False)
    for ax, (label, frame) in zip(axes[0], panels):
        sns.heatmap(frame, vmin=0, vmax=1, cmap="mako", annot=frame.size <= 160, fmt=".2f", ax=ax,
                    annot_kws={"fontsize": 6}, cbar=ax is axes[0][-1])
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("expert")
        ax.tick_params(axis="y", labelsize=6)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def ap_curves_figure(curves: Mapping[str, Sequence[float]], title: str, marks: Sequence[int] = (15, 20, 25)):
    """AP_t after every chunk for each method; vertical lines at the reported stream lengths."""
    curves = {k: v for k, v in curves.items() if v}
    if not curves:
        return None
    plt = _plt()
    import seaborn as sns

    long = pd.DataFrame([{"chunk": i + 1, "AP": ap, "method": label} for label, values in curves.items()
                         for i, ap in enumerate(values)])
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    sns.lineplot(data=long, x="chunk", y="AP", hue="method", marker="o", markersize=3, ax=ax)
    for n in marks:
        ax.axvline(n, color="0.6", lw=0.8, ls="--")
    ax.set_ylabel("AP after chunk t (%)")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def ranks_figure(run: Run, task_names: Sequence[str], title: str):
    """CRAM per-layer rank of every expert (rows = layers, columns = experts / tasks)."""
    history = run.stage_statistics("ranks") if run.exists else []
    if not history:
        return None
    last = history[-1][1]
    if isinstance(last, Mapping) and any(isinstance(v, Sequence) for v in last.values()):
        frame = pd.DataFrame({short_layer_name(k): list(v) for k, v in last.items() if isinstance(v, Sequence)}).T
    else:
        frame = pd.DataFrame({stage: {short_layer_name(k): v for k, v in value.items()}
                              for stage, value in history if isinstance(value, Mapping)})
    if frame.empty:
        return None
    frame.columns = [task_names[i] if isinstance(i, int) and i < len(task_names) else str(i)
                     for i in range(frame.shape[1])]
    frame = frame.apply(pd.to_numeric, errors="coerce")
    plt = _plt()
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(max(4.5, 0.8 * frame.shape[1] + 2), max(3.0, 0.22 * len(frame) + 1.5)))
    sns.heatmap(frame, annot=frame.size <= 300, fmt=".0f", cmap="rocket_r", ax=ax, annot_kws={"fontsize": 6},
                cbar_kws={"label": "rank"})
    ax.set_xlabel("expert (task that created it)")
    ax.tick_params(axis="y", labelsize=6)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def router_accuracy_figure(runs: Mapping[str, Run], key: str, title: str):
    """Bar chart of a routing accuracy statistic ({task: %} at the last stage) per run."""
    records = []
    for label, run in runs.items():
        value = run.last_statistic(key) if run.exists else None
        if isinstance(value, Mapping):
            records += [{"task": str(k), "accuracy": float(v), "run": label} for k, v in value.items()
                        if isinstance(v, (int, float)) and not isinstance(v, bool)]
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            records.append({"task": "overall", "accuracy": float(value), "run": label})
    if not records:
        return None
    plt = _plt()
    import seaborn as sns

    frame = pd.DataFrame(records)
    fig, ax = plt.subplots(figsize=(max(4.5, 0.7 * frame["task"].nunique() + 2.5), 3.4))
    sns.barplot(data=frame, x="task", y="accuracy", hue="run", ax=ax)
    ax.set_ylim(0, 100)
    ax.set_ylabel("routing accuracy (%)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
