# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: cvitkit (venv)
#     language: python
#     name: cvitkit
# ---

# %% [markdown]
# # 01 · Data preparation
#
# Every paper's protocol needs its benchmark: CoIN (BranchLoRA), MLLM-CL DCL/ACL (MR-LoRA), StrCVIT
# (StrLoRA), UCIT and TriGap (CRAM). This notebook makes them available to the rest of the pipeline:
#
# * **without a data root** it builds *synthetic analogues*: procedurally drawn images and instructions
#   that keep each benchmark's task names, order, answer formats and scoring rule, at a size a CPU can
#   train on. Same seed, same bytes.
# * **with a data root** it reads and validates the real benchmark files instead (layout:
#   `configs/data_layout.md`); nothing is downloaded.
#
# Outputs: the suites under `runs/<profile>/data/`, one image grid per suite, the StrCVIT
# stream-composition plot, and a dataset card in `results/<profile>/tables/`.

# %% tags=["parameters"]
profile = "smoke"      # smoke | mini | full
suites = []            # empty: the suites of the profile (add "pretrain" to see the base model mix)
data_root = ""         # folder with the real benchmark files; empty: synthetic analogues
force = False          # rebuild even if a finished build with the same config exists
samples_per_task = 4   # images shown per task in the grids

# %% [markdown]
# ## Profile and data settings
# The `data:` section of the profile fixes sizes, image resolution, seed and stream settings. A build is
# keyed by a hash of these settings (and of the suite definition), so re-running with the same profile
# skips finished suites and changing any setting rebuilds them.

# %%
import json
import time

import matplotlib.pyplot as plt
import pandas as pd

from cvitkit.config import describe, to_dict
from cvitkit.data import (
    DataConfig,
    build_suite,
    dataset_card,
    load_suite,
    load_suite_data,
    plot_composition,
    stream_properties,
    suite_grid,
)
from cvitkit.profiles import load_profile
from cvitkit.provenance import atomic_write_json, provenance, work_dir

prof = load_profile(profile, data_root=data_root)
cfg = prof.data
names = list(suites) or list(prof.suites)
root = work_dir(prof.name) / "data"
figures = prof.results_dir / "figures"
tables = prof.results_dir / "tables"
figures.mkdir(parents=True, exist_ok=True)
tables.mkdir(parents=True, exist_ok=True)
print(describe(DataConfig))
print("\nthis run:", json.dumps(to_dict(cfg)))
print("suites:", names, "\nsource:", prof.data_root or f"synthetic -> {root}")

# %% [markdown]
# ## The suites: paper task → family × domain × scorer
# A *family* is the kind of question (classify, vqa, relation, mcq, ocr, ground, math, chart, gui,
# caption, scene, unanswerable); a *domain* is the visual style (natural photo, aerial top view,
# grayscale pathology, driving scene, diagram, chart, document, phone screen, places, 3-D render).
# Tasks of a suite share domains but differ in instructions and answer formats, so learning one task
# disturbs another — the forgetting the methods are built to prevent. The scorer is the benchmark's
# own rule (see `reference/protocols.md`).

# %%
spec_rows = [{"suite": n, "order": i, "task": t.name, "family": t.family, "domain": t.domain, "scorer": t.scorer,
              "letter": t.letter} for n in names for i, t in enumerate(load_suite(n).tasks, 1)]
pd.DataFrame(spec_rows)

# %% [markdown]
# ## Build (synthetic) or validate (real)
# Synthetic suites are drawn with PIL, one private random stream per sample, written atomically (a
# half-built suite is never visible) and validated on loading. Real files are validated record by
# record: the first problem stops with a message naming the file, the record and the fix.

# %%
timings = {}
loaded = {}
for name in names:
    t0 = time.time()
    if prof.data_root:
        loaded[name] = load_suite_data(name, data_root=prof.data_root, check_images=cfg.check_images)
    else:
        build_suite(name, cfg, root, force=force)
        loaded[name] = load_suite_data(name, root, check_images=cfg.check_images)
    timings[name] = round(time.time() - t0, 2)
    sizes = loaded[name].sizes()
    print(f"{name:<11} {timings[name]:>6.1f} s  train {sum(s['train'] for s in sizes.values()):>6}  "
          f"test {sum(s['test'] for s in sizes.values()):>5}")

# %% [markdown]
# ## What the tasks look like
# One row per task: a few test images with their question (first line; options and the instruction
# suffix are in the dataset card) and the reference answer. Check that every answer is visible in
# its image — that is what the generator guarantees and the tests verify against the pixels.

# %%
for name, data in loaded.items():
    fig = suite_grid(data, n=samples_per_task)
    fig.savefig(figures / f"data_grid_{name}.png", dpi=110)
    plt.show() if name == names[0] else None
    plt.close(fig)
print("grids:", sorted(p.name for p in figures.glob("data_grid_*.png")))

# %% [markdown]
# ## The StrCVIT stream
# StrCVIT trains on a single pass over chunks whose task mixture evolves: tasks appear one after
# another, peak, fade, and some come back later; the learner is never told which task a sample belongs
# to. Each bar is a chunk; colours are tasks. The same plan (seeded) is saved as
# `stream_<N>/composition.json` next to the chunk files.

# %%
stream_props = {}
for name, data in loaded.items():
    if not data.chunks:
        continue
    lengths = sorted(data.chunks)
    fig, axes = plt.subplots(len(lengths), 1, figsize=(11, 3.2 * len(lengths)), squeeze=False)
    for ax, n in zip(axes[:, 0], lengths):
        plot_composition(data.composition[n], data.suite.task_names, ax=ax, title=f"{name}: {n} chunks")
        stream_props[f"{name}_{n}"] = stream_properties(data.composition[n], data.suite.task_names)
    fig.tight_layout()
    fig.savefig(figures / f"stream_composition_{name}.png", dpi=110)
    plt.show()
    plt.close(fig)
for key, props in stream_props.items():
    print(key, "recurring:", props["recurring_tasks"], "empty chunks:", props["empty_chunks"],
          "missing tasks:", props["missing_tasks"])

# %% [markdown]
# ## Dataset card
# Task, family, domain, scorer, router letter (MR-LoRA), sizes and one example per task. Saved as CSV
# (for other notebooks) and Markdown (for reading).

# %%
card = pd.concat([dataset_card(d) for d in loaded.values()], ignore_index=True)
card.to_csv(tables / "dataset_card.csv", index=False)
(tables / "dataset_card.md").write_text(card.drop(columns=["example_question"]).to_markdown(index=False) + "\n")
card[["suite", "order", "task", "family", "domain", "scorer", "letter", "train", "test", "example_answer"]]

# %% [markdown]
# ## Record
# What was built, where, with which settings; later stages read the data from `runs/<profile>/data/`.

# %%
summary = provenance(profile=prof.name, data_config=to_dict(cfg), source=prof.data_root or "synthetic",
                     root=str(prof.data_root or root), seconds=timings,
                     sizes={n: d.sizes() for n, d in loaded.items()}, streams=stream_props)
atomic_write_json(prof.results_dir / "data_summary.json", summary)
print("wrote", prof.results_dir / "data_summary.json", "and", tables / "dataset_card.csv")
