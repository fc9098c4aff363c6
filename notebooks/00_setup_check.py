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
# # 00 · Set-up check
#
# Before any experiment, this notebook checks that the environment can do what the kit needs:
# the library versions, the device, a forward pass, a loss and a generation on the profile's model,
# and — where `bitsandbytes` is installed — the 4-bit (QLoRA) loading path on a tiny model.
# It writes `results/<profile>/setup_check.json` so later notebooks (and you) can see what ran where.
#
# Nothing here is downloaded: tiny models are built from configs, real models are read from the
# folder given with `--model`.

# %% tags=["parameters"]
profile = "smoke"      # smoke | mini | full
model_path = ""        # overrides the profile's model folder (full profile)
check_4bit = True      # also load a tiny model in 4-bit and take one QLoRA step

# %% [markdown]
# ## Versions and device
# Recorded with every result the kit writes (see `cvitkit.provenance`): when numbers differ between
# machines, this is the first place to look.

# %%
import json
import time

import torch

from cvitkit.profiles import load_profile
from cvitkit.provenance import atomic_write_json, provenance

prof = load_profile(profile, model_path=model_path)
record = provenance(profile=prof.name)
print(json.dumps({k: record[k] for k in ("packages", "device")}, indent=2))

# %% [markdown]
# ## The profile's model
# `smoke` builds a random tiny LLaVA; `mini` uses the kit-pretrained tiny LLaVA, which does not exist
# yet at this point of the pipeline, so the check uses a random model of the same shape; `full` loads
# the real model from its folder (with the profile's quantisation).

# %%
from cvitkit.models import build_tiny_llava, count_parameters
from cvitkit.models.spec import load_from_config

t0 = time.time()
if prof.model.source == "path":
    model, processor = load_from_config(prof.model)
else:
    model, processor = build_tiny_llava(prof.model.preset, seed=prof.model.seed)
load_seconds = time.time() - t0
params = count_parameters(model)
print(f"loaded in {load_seconds:.1f} s;", {k: f"{v:,}" for k, v in params.items()})

# %% [markdown]
# ## Forward, loss and generation
# One synthetic image and question. The loss is computed on the answer tokens only (the LLaVA
# convention the collator uses later); generation is greedy, as in every paper's protocol.

# %%
from PIL import Image, ImageDraw

from cvitkit.models.prompt import render_vicuna_v1

size = processor.image_processor.crop_size["height"]
image = Image.new("RGB", (size, size), "white")
ImageDraw.Draw(image).ellipse([size // 4, size // 4, 3 * size // 4, 3 * size // 4], fill="red")
prompt = render_vicuna_v1([("user", "<image>\nWhat colour is the circle?")], add_generation_prompt=True)
full = prompt + " red</s>"
device = next(model.parameters()).device
batch = processor(text=[full], images=[image], return_tensors="pt").to(device)
n_prompt = processor(text=[prompt], images=[image], return_tensors="pt")["input_ids"].shape[1]
labels = batch["input_ids"].clone()
labels[:, :n_prompt] = -100
t0 = time.time()
with torch.no_grad():
    out = model(**batch, labels=labels)
forward_seconds = time.time() - t0
gen_inputs = processor(text=[prompt], images=[image], return_tensors="pt").to(device)
t0 = time.time()
with torch.no_grad():
    generated = model.generate(**gen_inputs, max_new_tokens=8, do_sample=False)
generate_seconds = time.time() - t0
answer = processor.tokenizer.decode(generated[0, gen_inputs["input_ids"].shape[1]:], skip_special_tokens=True)
print(f"loss {out.loss.item():.3f} (random init ≈ ln(vocab) = {torch.log(torch.tensor(float(len(processor.tokenizer)))):.2f})")
print(f"forward {forward_seconds * 1000:.0f} ms, generate 8 tokens {generate_seconds * 1000:.0f} ms, answer {answer!r}")

# %% [markdown]
# ## 4-bit QLoRA path
# The full profile trains LoRA adapters over a 4-bit base (nf4, double quantisation) with the vision
# tower, projector and `lm_head` kept in full precision. On CPU, bitsandbytes runs this path too
# (slower than fp32 — it only saves memory), so the check proves the code path on any machine.

# %%
import importlib.util

qlora = {"checked": False}
if check_4bit and importlib.util.find_spec("bitsandbytes") is not None:
    from peft import LoraConfig, get_peft_model

    from cvitkit.models import lora_target_regex
    from cvitkit.models.spec import ModelConfig

    from cvitkit.models import enable_training_mode

    q_model, q_proc = load_from_config(ModelConfig(source="tiny", preset="micro", quantization="4bit"))
    enable_training_mode(q_model)
    q_model = get_peft_model(q_model, LoraConfig(r=4, lora_alpha=8, target_modules=lora_target_regex("attention_qv")))
    kinds = sorted({type(m).__name__ for n, m in q_model.named_modules() if n.endswith("q_proj.base_layer")})
    q_batch = q_proc(text=[full], images=[image], return_tensors="pt")
    opt = torch.optim.AdamW([p for p in q_model.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    for _ in range(3):
        loss = q_model(**q_batch, labels=q_batch["input_ids"]).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(round(loss.item(), 4))
    qlora = {"checked": True, "quantised_layer_types": kinds, "losses": losses,
             "trainable_parameters": sum(p.numel() for p in q_model.parameters() if p.requires_grad)}
    print(qlora)
else:
    print("bitsandbytes not installed (or check_4bit=False): 4-bit path not checked")

# %% [markdown]
# ## Record
# The JSON below is what the pipeline keeps; `results/<profile>/executed/` holds this executed notebook.

# %%
record.update(model_source=prof.model.source, model_preset=prof.model.preset, parameters=params,
              load_seconds=round(load_seconds, 2), forward_ms=round(forward_seconds * 1000, 1),
              generate_ms=round(generate_seconds * 1000, 1), loss=round(out.loss.item(), 4), qlora=qlora)
atomic_write_json(prof.results_dir / "setup_check.json", record)
print("wrote", prof.results_dir / "setup_check.json")
