"""The 4-bit (QLoRA) path on CPU with a tiny model: bitsandbytes >= 0.45 runs nf4 on CPU."""

from __future__ import annotations

import pytest
import torch

from cvitkit.models import enable_training_mode, load_model, lora_target_regex
from tests.conftest import make_image

pytestmark = pytest.mark.quant


@pytest.fixture(scope="module")
def model_4bit(micro_llava_dir):
    return load_model(micro_llava_dir, quantization="4bit")


def test_language_model_is_4bit_and_vision_projector_head_stay_full_precision(model_4bit):
    model, _ = model_4bit
    kinds = {n: type(m).__name__ for n, m in model.named_modules()}
    assert kinds["model.language_model.layers.0.self_attn.q_proj"] == "Linear4bit"
    assert kinds["model.language_model.layers.1.mlp.down_proj"] == "Linear4bit"
    assert kinds["model.vision_tower.encoder.layers.0.self_attn.q_proj"] == "Linear"
    assert kinds["model.multi_modal_projector.linear_1"] == "Linear"
    assert kinds["lm_head"] == "Linear"


def test_qlora_loss_falls_on_cpu(micro_llava_dir):
    from peft import LoraConfig, get_peft_model

    model, processor = load_model(micro_llava_dir, quantization="4bit")
    enable_training_mode(model, gradient_checkpointing=True)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=lora_target_regex("all_linear")))
    assert type(model.base_model.model.model.language_model.layers[0].self_attn.q_proj).__name__ == "Linear4bit"
    frozen_before = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad
                     and p.dtype.is_floating_point}
    prompt = "USER: <image>\nWhat colour is the box? ASSISTANT:"
    batch = processor(text=[prompt + " red</s>"] * 4, images=[make_image(32)] * 4, return_tensors="pt")
    labels = batch["input_ids"].clone()
    labels[:, : processor(text=[prompt], images=[make_image(32)], return_tensors="pt")["input_ids"].shape[1]] = -100
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    losses = []
    for _ in range(10):
        loss = model(**batch, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    # A random base has tiny logits (lm_head std 0.02), so LoRA alone cannot reach a low loss; it can
    # still lower it by about a nat in ten steps, against no change at all if adapters were not wired.
    assert losses[-1] < losses[0] - 0.5, losses
    assert min(losses[-3:]) < min(losses[:3]), losses
    # Only adapters moved: every frozen float parameter (vision tower, projector, norms) is unchanged.
    for n, p in model.named_parameters():
        if n in frozen_before:
            assert torch.equal(p, frozen_before[n]), n
