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
# # 12 · MLLM-CL / MR-LoRA tables (DCL and ACL)
#
# MLLM-CL is a benchmark with two task-incremental tracks: **Domain Continual Learning** (DCL: remote
# sensing → medical → autonomous driving → science → finance) and **Ability Continual Learning** (ACL:
# OCR → math & logic → visual perception → GUI). Its method, **MR-LoRA**, isolates parameters — one
# LoRA expert per task, never changed afterwards — and lets a small MLLM **router** pick the expert for
# each test sample (no task id at test time).
#
# **No result number of the MLLM-CL paper is known** (`shared/reference/paper_numbers.md` §3), so every
# table here is measured only; the captions describe the paper's probable layouts. `not run` = no kit
# run yet; `—` = not computable (the notes say why). Tiny models on synthetic analogues of the domains
# and abilities show the *mechanism* (isolation removes forgetting; the router decides how close
# MR-LoRA gets to the oracle), not the paper's accuracies.

# %% tags=["parameters"]
profile = "smoke"      # smoke | mini | full
results_dir = ""       # folder holding runs/ (empty: results/<profile>); outputs go to <results_dir>/tables, /figures

# %% [markdown]
# ## Which runs exist

# %%
import pandas as pd

from cvitkit.report import ReportSession

pd.set_option("display.width", 200)
session = ReportSession("mllmcl", profile=profile, results_dir=results_dir)
print("runs read from :", session.store.runs_dir)
print("tables written :", session.tables_dir)
print("figures written:", session.figures_dir)
session.runs_overview()

# %% [markdown]
# ## DCL main table
# With $R_{t,i}$ the accuracy on task $i$ after stage $t$ (the run's `matrix.csv`):
#
# * per-domain columns: final accuracy $R_{T,i}$;
# * **MFT** $=\frac{1}{T}\sum_i R_{i,i}$ — accuracy right after learning each task (plasticity);
# * **MFN** $=\frac{1}{T}\sum_i R_{T,i}$ — mean final accuracy;
# * **MAA** $=\frac{1}{T}\sum_t\frac{1}{t}\sum_{i\le t}R_{t,i}$;
# * **BWT** $=\frac{1}{T-1}\sum_{i<T}(R_{T,i}-R_{i,i})$ in points.
#
# MFT − MFN is how much is lost along the way. MR-LoRA's experts never change, so its losses come only
# from routing mistakes; the oracle row (ground-truth routing) is its upper bound.

# %%
session.table("mllmcl_dcl")

# %% [markdown]
# ## ACL main table
# Same metrics over OCR → Math → VP → APP. On the real benchmark, Math needs an LLM judge and APP the
# EvalAI server; the kit scores their synthetic analogues with rule-based offline scorers.

# %%
session.table("mllmcl_acl")

# %% [markdown]
# ## Router accuracy
# The fraction of test samples the router sends to the expert of their own task
# (`statistics.json router_accuracy` after the last task), per task and overall. Since each expert is
# only good at its own task, router accuracy is the main limit on MR-LoRA's final accuracy: compare it
# with the gap between the MR-LoRA and oracle rows above.

# %%
session.table("mllmcl_router_dcl")

# %%
session.table("mllmcl_router_acl")

# %% [markdown]
# ## Expert LoRA rank
# MR-LoRA on DCL with expert ranks 4, 8, 16, 32 (the release sweeps 8 … 256 on LLaVA-1.5-7B). More
# rank means more capacity per expert and more parameters (last column, all experts together).

# %%
session.table("mllmcl_lora_rank")

# %% [markdown]
# ## Router training samples
# The router is trained on a few samples per task (20 by default). With 5, 10, 20, 50 samples: how
# quickly does routing accuracy saturate, and how does MFN follow it?

# %%
session.table("mllmcl_router_shots")

# %% [markdown]
# ## Figures
# **Accuracy matrices** (stage × task): for MR-LoRA the columns should stay flat below the diagonal
# (experts are frozen); for LoRA-FT they fade (forgetting).

# %%
session.figure("mllmcl_matrix_dcl_mr_lora")

# %%
session.figure("mllmcl_matrix_dcl_lora_ft")

# %%
session.figure("mllmcl_matrix_acl_mr_lora")

# %%
session.figure("mllmcl_matrix_acl_lora_ft")

# %% [markdown]
# **Forgetting curves** of sequential LoRA fine-tuning on DCL, and **router accuracy** per task.

# %%
session.figure("mllmcl_forgetting_dcl_lora_ft")

# %%
session.figure("mllmcl_router_accuracy")

# %% [markdown]
# ## Written files

# %%
index = session.finish()
for path in session.written:
    print(path)
