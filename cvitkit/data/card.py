"""Dataset cards and figures for the data notebook: what each task is, how big, what it looks like.

pandas and matplotlib are imported inside the functions so that the data package stays light.
"""

from __future__ import annotations


def dataset_card(suite_data) -> pandas.DataFrame:  # noqa: F821
    """One row per task: suite, task, family, domain, scorer, router letter, sizes, an example."""
    import pandas as pd

    rows = []
    s = suite_data.suite
    for i, t in enumerate(s.tasks, 1):
        test = suite_data.test.get(t.name, [])
        example = test[0] if test else {}
        answer = example.get("answer", "")
        rows.append({
            "suite": s.name, "order": i, "task": t.name, "family": t.family, "domain": t.domain, "scorer": t.scorer,
            "letter": t.letter, "train": len(suite_data.train.get(t.name, [])), "test": len(test),
            "description": t.description,
            "example_question": example.get("text", "").replace("<image>\n", "").replace("\n", " / "),
            "example_answer": answer[0] if isinstance(answer, list) else answer,
            "n_references": len(answer) if isinstance(answer, list) else 1,
        })
    return pd.DataFrame(rows)


def composition_frame(composition: list[dict[str, int]], tasks: list[str]) -> pandas.DataFrame:  # noqa: F821
    """Chunks × tasks table of sample counts (0 where a task is absent)."""
    import pandas as pd

    return pd.DataFrame([{t: c.get(t, 0) for t in tasks} for c in composition],
                        index=pd.RangeIndex(1, len(composition) + 1, name="chunk"))


def plot_composition(composition: list[dict[str, int]], tasks: list[str], ax=None, title: str = ""):
    """Stacked bars: samples of each task in every chunk (tasks appear, recur and fade)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    frame = composition_frame(composition, tasks)
    if ax is None:
        _, ax = plt.subplots(figsize=(max(6, 0.35 * len(frame)), 3.6))
    colours = sns.color_palette("tab20", len(tasks))
    bottom = None
    for colour, task in zip(colours, tasks):
        ax.bar(frame.index, frame[task], bottom=bottom, color=colour, label=task, width=0.85)
        bottom = frame[task] if bottom is None else bottom + frame[task]
    ax.set_xlabel("chunk")
    ax.set_ylabel("samples")
    ax.set_xticks(list(frame.index))
    ax.set_title(title or f"stream of {len(frame)} chunks")
    ax.legend(fontsize=7, ncol=1, bbox_to_anchor=(1.01, 1), loc="upper left", frameon=False)
    return ax.figure


def image_grid(suite_data, task: str, n: int = 6, split: str = "test", cols: int = 6):
    """Images of ``task`` with their question and answer underneath."""
    import textwrap

    import matplotlib.pyplot as plt

    ds = suite_data.dataset(task, split)
    n = min(n, len(ds))
    cols = min(cols, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(2.3 * cols, 2.9 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i in range(n):
        item = ds[i]
        ax = axes.flat[i]
        if item["pil_image"] is not None:
            ax.imshow(item["pil_image"], interpolation="nearest")
        if split == "test":
            q = item["text"].replace("<image>\n", "")
            a = item["answer"][0] if isinstance(item["answer"], list) else item["answer"]
        else:
            q = item["conversations"][0]["value"].replace("<image>\n", "")
            a = item["conversations"][1]["value"]
        q = q.split("\n")[0]  # the question; options and suffix are shown in the card
        ax.set_title(textwrap.fill(q, 28) + f"\n→ {textwrap.shorten(str(a), 30)}", fontsize=6.5)
    fig.suptitle(f"{suite_data.suite.name} / {task}", fontsize=9)
    fig.tight_layout()
    return fig


def suite_grid(suite_data, n: int = 4, split: str = "test"):
    """One row per task (its name on the left), ``n`` images each with question and answer."""
    import textwrap

    import matplotlib.pyplot as plt

    records = suite_data.test if split == "test" else suite_data.train
    tasks = [t for t in suite_data.suite.task_names if records.get(t)]
    fig, axes = plt.subplots(len(tasks), n, figsize=(2.2 * n, 2.55 * len(tasks)), squeeze=False)
    for row, task in zip(axes, tasks):
        ds = suite_data.dataset(task, split)
        for j, ax in enumerate(row):
            ax.set_xticks([])
            ax.set_yticks([])
            if j >= len(ds):
                ax.axis("off")
                continue
            item = ds[j]
            if item["pil_image"] is not None:
                ax.imshow(item["pil_image"], interpolation="nearest")
            if split == "test":
                q, a = item["text"], item["answer"]
                a = a[0] if isinstance(a, list) else a
            else:
                q, a = item["conversations"][0]["value"], item["conversations"][1]["value"]
            q = q.replace("<image>\n", "").split("\n")[0]
            ax.set_title(textwrap.fill(textwrap.shorten(q, 70), 30) + f"\n→ {textwrap.shorten(str(a), 28)}",
                         fontsize=6)
        row[0].set_ylabel(task, fontsize=9, rotation=90)
    fig.suptitle(f"{suite_data.suite.name} ({split})", fontsize=10)
    fig.tight_layout()
    return fig
