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
# # 21 · QLoRA: memory and speed with and without 4-bit
#
# The `full` profile trains adapters over a **4-bit** base model (QLoRA) so that a 7B MLLM fits a
# consumer GPU. Where does the memory of a training step go?
#
# * **frozen base weights** — 4 bytes per parameter in fp32, 2 in bf16, about 0.52 in nf4 with double
#   quantisation (4-bit codes plus one scaling constant per 64 weights, itself quantised);
# * **adapter state** — the LoRA parameters (fp32), their gradients and AdamW's two moments: 16 bytes
#   per trainable parameter, whatever the base precision;
# * **activations** — tensors autograd keeps for the backward pass. **Gradient checkpointing** keeps
#   only each layer's input and recomputes the rest during backward: less memory, more compute.
#
# Part 1 *measures* these on the kit's tiny LLaVA on this machine (`cvitkit.memory.tiny_training_step`
# counts the bytes of every tensor a step holds, so it works on CPU where no allocator statistics
# exist). Part 2 applies the same accounting in closed form (`cvitkit.memory.estimate`) to
# LLaVA-1.5-7B and asks which settings fit a 12 GB GPU. Both are measured or computed here; no
# number below is a paper's.

# %% tags=["parameters"]
profile = "smoke"       # smoke | mini | full: only chooses where the outputs go
preset = "tiny-3m"      # tiny model measured in part 1: micro, tiny-3m or tiny-20m
batch = 4               # samples per measured step
rank = 8                # LoRA rank of the measured adapter
steps = 3               # timed steps per setting; the median is reported
budget_gib = 12.0       # GPU memory of part 2
seq = 700               # tokens per sample in part 2; LLaVA-1.5 has 576 image tokens plus the text
lora_rank = 128         # LoRA rank in part 2, the papers' setting
results_dir = ""        # where tables/ and figures/ go; empty means results/<profile>

# %% [markdown]
# ## Part 1 · Measure a training step of the tiny model
# Six settings: base in fp32, bf16 or nf4 (4-bit), each with and without gradient checkpointing. The
# adapter is the same LoRA of rank `rank` on every linear layer of the language model. On CPU,
# bitsandbytes dequantises the 4-bit weights in every matmul, so 4-bit saves memory, not time; on a
# GPU bf16 and 4-bit kernels are the fast path.

# %%
import importlib.util

import pandas as pd
from IPython.display import Image, display

from cvitkit.memory import PRECISIONS, tiny_training_step
from cvitkit.report.results import resolve_results_dir

out_dir = resolve_results_dir(profile, results_dir)
precisions = [p for p in PRECISIONS if p != "4bit" or importlib.util.find_spec("bitsandbytes")]
if "4bit" not in precisions:
    print("bitsandbytes is not installed: the 4-bit rows are skipped (pip install -e '.[quant]')")
rows = [tiny_training_step(preset, p, ckpt, batch=batch, rank=rank, steps=steps)
        for p in precisions for ckpt in (False, True)]
MiB = 1024 ** 2
measured = pd.DataFrame(rows)
components = ["weights", "trainable", "gradients", "optimizer_state", "activations"]
shown = measured[["precision", "checkpointing"]].copy()
for c in components + ["total"]:
    shown[f"{c} MiB"] = measured[c] / MiB
shown["step ms"] = measured["step_ms"]
shown["trainable params"] = measured["trainable_parameters"]
shown.round(3)

# %% [markdown]
# Read the table column by column: **weights** shrink from fp32 to bf16 to 4-bit. On a tiny model the
# embeddings, vision tower and `lm_head`, which stay unquantised, are a large share — and peft's
# `prepare_model_for_kbit_training` keeps them in fp32 — so the 4-bit gain is far smaller than on a 7B
# model. The adapter's state does not change with the base precision. **Activations** drop with
# checkpointing while **step ms** rises (the recomputation). bf16 is slow on CPUs without bf16 matrix
# units: a GPU number, not a CPU one.

# %%
from cvitkit.report.plots import _plt, save_figure

tables = out_dir / "tables"
tables.mkdir(parents=True, exist_ok=True)
shown.to_csv(tables / "qlora_memory_tiny.csv", index=False, float_format="%.4f")
(tables / "qlora_memory_tiny.md").write_text(
    f"Measured by cvitkit: one LoRA training step of the {preset} tiny LLaVA, batch {batch}, rank {rank}, "
    "bytes counted per tensor (cvitkit.memory.measure_step), median step time on this machine.\n\n"
    + shown.round(3).to_markdown(index=False) + "\n")

plt = _plt()
labels = [f"{p}\n{'ckpt' if c else 'no ckpt'}" for p, c in zip(measured["precision"], measured["checkpointing"])]
fig, (ax_mem, ax_time) = plt.subplots(1, 2, figsize=(11, 3.8))
(measured[components] / MiB).set_axis(labels).plot.bar(stacked=True, ax=ax_mem, rot=0, colormap="tab10")
ax_mem.set_ylabel("MiB per training step")
ax_mem.set_title(f"{preset}: memory of one step (measured)")
ax_time.bar(labels, measured["step_ms"], color="0.5")
ax_time.set_ylabel("ms per step (median, this machine)")
ax_time.set_title("speed")
written = [tables / "qlora_memory_tiny.csv", tables / "qlora_memory_tiny.md",
           save_figure(fig, out_dir / "figures" / "qlora_memory_tiny.png",
                       stamp=f"cvitkit {profile} qlora memory, {preset} (measured)")]
display(Image(str(written[-1])))

# %% [markdown]
# ## Part 2 · LLaVA-1.5-7B on a 12 GB GPU (closed-form estimate)
# `cvitkit.memory.estimate` applies the accounting above to the model's dimensions: Vicuna-7B (32
# layers, hidden 4096, MLP 11008) with CLIP ViT-L/14-336 and the projector kept in bf16, a LoRA of rank
# `lora_rank` on every linear layer of the language model plus a trainable projector, bf16
# activations, `seq` tokens per sample. A setting **fits** when its total stays under the budget minus
# 1 GiB for the CUDA context and allocator fragmentation, which the formula does not model.

# %%
from cvitkit.memory import LLAVA_15_7B, sweep_estimates

estimates = pd.DataFrame(sweep_estimates(LLAVA_15_7B, budget_gib=budget_gib, lora_rank=lora_rank, seq=seq))
parts = [c for c in estimates.columns if c.startswith("weights/")] + ["adapter_and_optimizer", "activations"]
estimates[["quantization", "checkpointing", "batch", *parts, "total", "fits"]].round(2)

# %% [markdown]
# What to look for: bf16 weights alone (about 13 GiB) exceed 12 GB, so nothing fits without
# quantisation; the adapter state does not depend on the base precision but on the LoRA rank (16 bytes
# per trainable parameter: at rank 128 on every linear layer it is several GiB, so a smaller rank is
# the next lever); without checkpointing the activations grow by about 3 GiB per sample of 700 tokens.
# The cell below lists what fits under the parameters chosen above.

# %%
fitting = estimates[estimates["fits"]]
print(f"settings that fit {budget_gib:g} GB:")
print(fitting[["quantization", "checkpointing", "batch", "total"]].round(2).to_string(index=False) if len(fitting)
      else "none")
estimates.to_csv(tables / "qlora_memory_llava15_7b.csv", index=False, float_format="%.4f")
(tables / "qlora_memory_llava15_7b.md").write_text(
    f"Estimated by cvitkit.memory.estimate (closed form, GiB): {LLAVA_15_7B.name}, LoRA rank {lora_rank} on all "
    f"linear layers + projector, {seq} tokens per sample; fits = total <= {budget_gib:g} - 1 GiB.\n\n"
    + estimates.round(2).to_markdown(index=False) + "\n")
written += [tables / "qlora_memory_llava15_7b.csv", tables / "qlora_memory_llava15_7b.md"]

# %% [markdown]
# The stacked bars show each setting's components; the dashed line is the budget. Batch 1 only, so
# that the weights' share is visible; the table above has the larger batches.

# %%
import seaborn as sns

sns.set_theme(style="whitegrid")
one = estimates[estimates["batch"] == 1]
bar_labels = [f"{q}\n{'ckpt' if c else 'no ckpt'}" for q, c in zip(one["quantization"], one["checkpointing"])]
fig, ax = plt.subplots(figsize=(8, 4))
one[parts].set_axis(bar_labels).plot.bar(stacked=True, ax=ax, rot=0, colormap="tab10")
ax.axhline(budget_gib, ls="--", color="crimson", label=f"{budget_gib:g} GB GPU")
ax.set_ylabel("GiB")
ax.set_title(f"{LLAVA_15_7B.name}, LoRA r={lora_rank}, batch 1, {seq} tokens (estimate)")
ax.legend(fontsize=7)
written.append(save_figure(fig, out_dir / "figures" / "qlora_memory_llava15_7b.png",
                           stamp=f"cvitkit {profile} qlora memory estimate (closed form)"))
display(Image(str(written[-1])))

# %% [markdown]
# ## Written files

# %%
import json

from cvitkit.provenance import atomic_write_json, provenance

record = {"preset": preset, "batch": batch, "rank": rank, "measured": rows,
          "estimate": {"budget_gib": budget_gib, "seq": seq, "lora_rank": lora_rank,
                       "rows": json.loads(estimates.to_json(orient="records"))},
          "provenance": provenance()}
atomic_write_json(out_dir / "qlora_memory.json", record)
written.append(out_dir / "qlora_memory.json")
for path in written:
    print(path)
