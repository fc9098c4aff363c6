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
# # 11 · BranchLoRA tables (CoIN)
#
# BranchLoRA (ACL 2025) turns the CoIN MoELoRA baseline into an asymmetric mixture: one shared
# **trunk** matrix $A$ and several **branch** matrices $B_j$, sparse top-$k$ routing, freezing of the
# most-used branches after each task, and one router per task chosen at test time by a **task
# selector**. This notebook regenerates the paper's tables from the kit's runs on the CoIN suite
# (8 tasks: ScienceQA → TextVQA → ImageNet → GQA → VizWiz → Grounding → VQAv2 → OCR-VQA).
#
# **How to read every table.** Each column comes twice:
#
# * `<column> (measured)` — computed by the kit from its own runs (`results/<profile>/runs/coin/…`);
# * `<column> (reported: secondary)` — the number a third-party note gives for the paper
#   (`results/paper/branchlora_*.csv`); `[n]` points at its source in the notes under the table.
#
# A reported number is never put in a measured column. `not run` means the kit run does not exist
# yet; `—` means the run exists but the cell cannot be computed (the notes say why). The kit's
# `smoke`/`mini` profiles train tiny models on synthetic analogues of CoIN, so their absolute
# accuracies are **not** expected to match LLaVA-1.5-7B: compare the *orderings* (does BranchLoRA
# beat MoELoRA? does each component help?) and the *gaps*, not the values. Only the `full` profile
# (the real model and data) adds `delta (measured - reported)` columns.

# %% tags=["parameters"]
profile = "smoke"      # smoke | mini | full
results_dir = ""       # folder holding runs/ (empty: results/<profile>); outputs go to <results_dir>/tables, /figures

# %% [markdown]
# ## Which runs exist
# Every table row names the kit run that measures it (`coin/<method>[__<variant>]`). The overview
# lists them with their status and provenance (profile, model, git commit, date, device), the same
# provenance each output file carries in its header.

# %%
import pandas as pd

from cvitkit.report import ReportSession

pd.set_option("display.width", 200)
session = ReportSession("branchlora", profile=profile, results_dir=results_dir)
print("runs read from :", session.store.runs_dir)
print("tables written :", session.tables_dir)
print("figures written:", session.figures_dir)
session.runs_overview()

# %% [markdown]
# ## Main results on CoIN
# One row per method, trained on the 8 tasks in order. With $R_{t,i}$ the accuracy on task $i$ after
# training stage $t$ (the run's `matrix.csv`):
#
# * per-task columns: the **final** accuracy $R_{T,i}$ after the last task;
# * **ACC** $= \frac{1}{T}\sum_i R_{T,i}$ (mean final accuracy; = MFN = Last);
# * **MAA** $= \frac{1}{T}\sum_t \frac{1}{t}\sum_{i\le t} R_{t,i}$ (accuracy averaged over the whole sequence);
# * **BWT** $= \frac{1}{T-1}\sum_{i<T}(R_{T,i}-R_{i,i})$ in points (negative = forgetting);
# * **tunable params**: all adapter parameters the method adds (`summary.json`).
#
# Multi-task (joint training on all tasks) is the usual upper bound; it has one stage, so its MAA is
# its final mean accuracy and its BWT is undefined. The paper's per-task numbers are unknown, so only
# ACC/MAA/BWT/params have reported columns. Read it as: LoRA < LwF/EWC < MoELoRA < BranchLoRA <
# Multi-task in the paper — does the kit reproduce that ordering and the narrowing of BWT?

# %%
session.table("branchlora_main")

# %% [markdown]
# ## Larger backbone
# The paper repeats MoELoRA vs BranchLoRA on LLaVA-1.5-13B. The kit's analogue is its larger tiny
# model (`__large` runs, preset `tiny-20m`). Same metrics as above; the question is whether the gap
# between the two methods persists when the model grows.

# %%
session.table("branchlora_large")

# %% [markdown]
# ## Cumulative ablation
# Starting from MoELoRA, the components are added one at a time: a shared $A$ (trunk), sparse top-$k$
# routing (the note calls this step "Dynamic Chunking Routing"), freezing the most-used branches after
# each task, and task-specific routers with the task selector (= full BranchLoRA). Each row is a
# separate run of the whole sequence; read the change from one row to the next.

# %%
session.table("branchlora_ablation")

# %% [markdown]
# ## Efficiency
# Parameters: all adapter parameters, and those still trainable in the last task (freezing makes
# BranchLoRA's shrink). Time: the median wall time of one optimizer step ×1000
# (`summary.json step_seconds_median`), on the device recorded in the runs' provenance. The paper
# timed one batch on 8 × H800, so compare the **ratio** BranchLoRA / MoELoRA (222M/350M and 51/62 ms
# in the note), not the values.

# %%
session.table("branchlora_efficiency")

# %% [markdown]
# ## Instruction diversity
# BranchLoRA trained with the default instruction templates vs more diverse ones ("10Type"; CoIN's
# `Instruction_Type2`; the kit's `__diverse` variant). Only ACC is reported (44.20 → 46.47).

# %%
session.table("branchlora_diversity")

# %% [markdown]
# ## Task-selector accuracy
# At test time no task id is given: the task selector picks which task router to use. Its accuracy is
# the fraction of test inputs sent to their own task's router (`statistics.json selector_accuracy`
# after the last task), overall and per task. A wrong selection routes through another task's
# branches, so a low value caps the accuracy BranchLoRA can reach.

# %%
session.table("branchlora_selector")

# %% [markdown]
# ## Hyperparameters
# The paper's settings (secondary) beside the kit's configuration of `coin/branchlora`
# (`config.json`, columns labelled `(kit config)`: settings, not measurements). The kit scales rank
# and alpha down for its tiny model and keeps the number of branches and top-$k$.

# %%
session.table("branchlora_hparams")

# %% [markdown]
# ## Figures
# **Accuracy matrices**: row = after which stage, column = which task; the lower triangle is what the
# metrics use; a column that fades downward is a task being forgotten.

# %%
session.figure("branchlora_matrix_branchlora")

# %%
session.figure("branchlora_matrix_moelora")

# %%
session.figure("branchlora_matrix_lora_ft")

# %% [markdown]
# **Forgetting curves**: each task's accuracy over the stages. A line that drops after the task's own
# stage is forgetting; BWT is the average of those drops at the end.

# %%
session.figure("branchlora_forgetting")

# %%
session.figure("branchlora_forgetting_lora")

# %% [markdown]
# **Routing**: the fraction of gate mass each branch receives in every adapted layer after the last
# task. Sparse top-$k$ routing and freezing should concentrate mass on a few branches per task.

# %%
session.figure("branchlora_routing")

# %% [markdown]
# ## Written files
# Each table is written as CSV (numbers, with `#` provenance lines), Markdown and LaTeX; all tables of
# this paper are also collected in `branchlora_tables.md`.

# %%
index = session.finish()
for path in session.written:
    print(path)
