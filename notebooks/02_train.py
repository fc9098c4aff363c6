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
# # 02 · Continual training
#
# This notebook trains one or more methods on one suite, the way every paper of the kit does it:
# the tasks (or the chunks of a stream) arrive one after another; after each one the model is
# evaluated, which fills one row of the **accuracy matrix** $R_{t,i}$ — the score on task $i$ after
# training stage $t$.
#
# What happens under the hood (`cvitkit.runner.run_named` → `cvitkit.train.ContinualTrainer`):
#
# 1. the profile's base model is loaded and frozen (for `mini`: the tiny LLaVA the kit pretrains
#    first; for `full`: a real model from a local folder, optionally in 4-bit — the QLoRA switch);
# 2. the method wraps it with its adapters (a LoRA, a mixture of LoRA experts, …);
# 3. for every experience the method's lifecycle runs: `before_experience` → training steps →
#    `after_experience` → evaluation → an atomic checkpoint of the trainable state;
# 4. a killed run resumes from the last finished stage and ends with the same numbers.
#
# `runs = ["base"]` pretrains (or shows) the `mini` profile's base model instead.

# %% tags=["parameters"]
profile = "smoke"          # smoke | mini | full
suite = "mllmcl_dcl"       # coin, mllmcl_dcl, mllmcl_acl, strcvit, ucit, trigap
runs = ["lora_ft"]         # run ids: a method ("moelora") or a declared variant ("branchlora__sparse"); ["base"]
stream_length = 0          # stream suites: number of chunks; 0 means the longest declared
quantization = ""          # empty: the profile's; "4bit": QLoRA over an nf4 base; "none": full precision
force = False              # True: discard finished stages and train again
model_path = ""            # full profile: local folder of the MLLM
data_root = ""             # full profile: root of the real benchmark files

# %% [markdown]
# ## The profile
# A profile fixes the model, the data sizes and the training loop; the methods' own settings come
# from their config dataclasses (`paper` preset for real models, `mini` preset for tiny ones).

# %%
import json

import pandas as pd

from cvitkit.profiles import load_profile

prof = load_profile(profile, model_path=model_path, data_root=data_root)
print(f"profile {prof.name}: {prof.description}")
print("model:", prof.model)
print("train:", prof.train)

# %% [markdown]
# ## The base model (`runs = ["base"]`)
# Continual instruction tuning starts from an instruction-following model. At `mini` scale the kit
# builds one: a tiny LLaVA trained from scratch on a general synthetic mix (captions and simple
# questions in a visual style that no benchmark suite uses). It is trained once and cached.

# %%
if runs == ["base"]:
    from cvitkit.base_model import ensure_base_model, load_base_report

    if prof.model.source != "base":
        print(f"profile {prof.name} uses model.source={prof.model.source!r}: no kit base model to build")
        base_report = None
    else:
        base_report = load_base_report(ensure_base_model(prof))
        curve = pd.DataFrame(base_report["loss_curve"])
        ax = curve.plot(x="step", y="loss", title="base-model pretraining loss", legend=False)
        ax.set_ylabel("training loss")
        print(json.dumps({k: base_report[k] for k in ("samples", "steps", "train_seconds", "held_out")}, indent=1))

# %% [markdown]
# ## Train each run
# Each run id names a method and, optionally, a variant declared in `configs/methods/<method>.yaml`
# (an ablation switch, or another model size). Progress bars show the steps of each experience; one
# line per experience reports the loss and the scores of the tasks evaluated after it.

# %%
from cvitkit.runner import run_named

results = {}
if runs != ["base"]:
    for run_id in runs:
        print(f"=== {suite} / {run_id}")
        results[run_id] = run_named(prof, suite, run_id, stream_length=stream_length or None,
                                    quantization=quantization, force=force)

# %% [markdown]
# ## What was trained
# For task-incremental suites: **MFN** (= ACC, mean final accuracy), **MAA** (mean over stages of the
# mean accuracy on the tasks seen so far), **MFT** (mean accuracy on each task right after learning
# it — plasticity) and **BWT** (mean change of each task between right-after-learning and the end —
# negative means forgetting). For streams: **MAP** (mean over chunks of the average performance) and
# **MAF** (mean average forgetting). Formulas: `cvitkit/eval/metrics.py`.

# %%
rows = []
for run_id, res in results.items():
    m = res.metrics
    rows.append({"run": run_id, **{k: m.get(k) for k in ("MFN", "MAA", "MFT", "BWT", "MAP", "MAF") if k in m},
                 "adapter params": res.summary["adapter_parameters"].get("adapter_total"),
                 "trainable (last stage)": res.summary["adapter_parameters"].get("adapter_trainable"),
                 "ms / step": round(1000 * (res.summary["step_seconds_median"] or 0), 1),
                 "train s": round(res.summary["train_seconds"], 1)})
summary = pd.DataFrame(rows).set_index("run") if rows else pd.DataFrame()
summary.round(2)

# %% [markdown]
# ## Accuracy matrices
# Rows are stages (after which task or chunk), columns are tasks; the upper triangle of a
# task-incremental run is empty because a task is evaluated only once it has been seen.

# %%
for run_id, res in results.items():
    print(f"--- {run_id}")
    print(res.matrix.round(1).to_string())

# %% [markdown]
# ## Training loss per experience
# A loss that starts high at each new task and falls is the usual picture; a rising first loss
# along the sequence shows how far the previous tasks moved the adapter away from the new one.

# %%
loss_rows = [{"run": run_id, **row} for run_id, res in results.items() for row in res.summary["loss"]
             if row.get("first") is not None]
if loss_rows:
    losses = pd.DataFrame(loss_rows)
    ax = losses.pivot(index="stage", columns="run", values="last").loc[losses["stage"].unique()].plot(
        marker="o", title="training loss at the end of each experience")
    ax.set_ylabel("loss")
