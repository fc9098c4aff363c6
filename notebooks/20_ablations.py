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
# # 20 · Ablations: any method × switch × suite
#
# An ablation asks what one part of a method buys: train the method as it is, then again with one
# setting changed, on the same data, seed and base model, and compare. Everything else stays fixed,
# so a difference in the table is the switch's effect (on a tiny model and synthetic data: a
# difference in *this* setting, to be read as a hint, not as the paper's number).
#
# A **switch** is either
#
# * a **declared variant** of the method, from `configs/methods/<method>.yaml` — e.g. BranchLoRA's
#   cumulative ablation `shared_a` → `sparse` → `freeze` (the full method is the plain run). These share
#   their run folders with the pipeline, so runs the paper tables already trained are reused; or
# * a **dict of config overrides**, `{"name": {"field": value}}`, any field of the method's config
#   dataclass (`cvitkit/methods/<method>.py`), e.g. `{"rank_4": {"rank": 4}}`. These run in their own
#   folders (`<method>__abl-<name>`), so they never overwrite a declared run.
#
# Runs are resumable: a finished run with the same configuration is read back, not trained again.
# The logic lives in `cvitkit/ablation.py`; this notebook only chooses and shows.

# %% tags=["parameters"]
profile = "smoke"          # smoke | mini | full
suite = "mllmcl_acl"       # coin, mllmcl_dcl, mllmcl_acl, strcvit, ucit, trigap
method = "branchlora"      # any registered method (lora_ft, moelora, branchlora, mr_lora, strlora, cram, ...)
switches = ["sparse"]      # declared variant names, "all", or {"name": {config field: value}}
stream_length = 0          # stream suites: number of chunks; 0 means the longest declared
force = False              # True: train every arm again even when a finished run exists
results_dir = ""           # where tables/ and figures/ go; empty means results/<profile>

# %% [markdown]
# ## The arms
# One baseline (the method with its preset settings: the `paper` preset on real models, `mini` on
# tiny ones) and one arm per switch, with what each changes.

# %%
import pandas as pd

from cvitkit.ablation import ablation_arms, ablation_figure, ablation_table, task_figure, write_ablation
from cvitkit.profiles import load_profile
from cvitkit.report.plots import save_figure
from cvitkit.report.results import resolve_results_dir

pd.set_option("display.width", 200)
prof = load_profile(profile)
out_dir = resolve_results_dir(profile, results_dir)
arms = ablation_arms(method, switches)
pd.DataFrame([{"arm": a.name, "run": a.run_id or f"{method}__{a.variant}", "changes": a.description}
              for a in arms]).set_index("arm")

# %% [markdown]
# ## Train (or reuse) every arm
# Each arm is one full continual run over the suite: tasks (or chunks) one after another, an
# evaluation after each, checkpoints per stage. A run that already finished with the same
# configuration comes back in a fraction of a second.

# %%
from cvitkit.ablation import run_ablation

results = run_ablation(prof, suite, method, switches, stream_length=stream_length or None, force=force)

# %% [markdown]
# ## Comparison
# Per arm: the **final score of each task** (last row of the accuracy matrix), the summary metrics —
# task-incremental suites: **ACC** (mean final accuracy, = MFN), **MAA** (accuracy averaged along the
# sequence), **BWT** (negative = forgetting); streams: **MAP** and **MAF** — then the adapter's
# **trainable parameters** in the last stage, the **training time** (seconds, summed over stages, on
# this machine) and the change of the first metric against the baseline. All numbers are measured
# here; none comes from a paper.

# %%
table = ablation_table(results, arms)
caption = (f"Ablation of {method} on {suite} (profile {profile}); measured by cvitkit, "
           f"baseline = '{arms[0].name}'. Runs: " + ", ".join(table["run"]))
written = write_ablation(table, out_dir, suite, method, caption=caption)
table.drop(columns=["run"]).round(2)

# %% [markdown]
# ## Figures
# Left to right, the summary metrics; one bar per arm. A switch that helps raises ACC/MAA (or MAP)
# and brings BWT (or MAF) towards zero; the second figure shows which tasks the change comes from.

# %%
from IPython.display import Image, display

stamp = f"cvitkit {profile} ablation {suite}/{method} (measured)"
for fig, name in ((ablation_figure(table, f"{method} on {suite}: with and without each switch"), "metrics"),
                  (task_figure(table, f"{method} on {suite}: final score per task"), "tasks")):
    if fig is not None:
        written.append(save_figure(fig, out_dir / "figures" / f"ablation_{suite}_{method}_{name}.png", stamp=stamp))
        display(Image(str(written[-1])))

# %% [markdown]
# ## Written files

# %%
for path in written:
    print(path)
