"""Stage 0 of the ``mini`` base model: pretrain the vision tower on captioned images of every domain.

A real MLLM's vision tower (CLIP) was trained on web-scale image-text pairs before any instruction
tuning: it already tells a car from a kite and sees the word on a sign, in every visual domain, and
the continual tasks only have to teach the language model to *say* it. A tiny tower trained only on the
kit's toy pretraining domain does not: after fine-tuning, the tiny model answered every ImageNet image
with the same class and every TextVQA sign with the same word (issue #4). This stage plays CLIP's
part. The tower learns, from captions of images drawn in every domain, which caption words describe an
image (weakly supervised bag-of-words prediction, Joulin et al., 2016):

.. math::

    \\mathcal{L} = \\mathrm{BCE}\\big(W\\,\\bar h(x) + b,\\; \\mathbb{1}[\\text{token } v \\in \\text{caption}(x)]\\big),
    \\qquad \\bar h(x) = \\frac{1}{N}\\sum_{i=1}^{N} h_i(x)

with :math:`h_i` the tower's patch features at the layer LLaVA reads (``vision_feature_layer``). The
head :math:`(W, b)` is discarded afterwards; the language model and the projector never see these
images or captions, so the continual tasks stay new to the instruction-following part of the model.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm


def patch_features(model, pixel_values: torch.Tensor) -> torch.Tensor:
    """``(batch, patches, hidden)``: the vision tower's output at the layer the projector reads."""
    layer = model.config.vision_feature_layer
    out = model.model.vision_tower(pixel_values, output_hidden_states=True)
    hidden = out.hidden_states[layer] if isinstance(layer, int) else torch.cat(
        [out.hidden_states[i] for i in layer], dim=-1)
    return hidden[:, 1:] if model.config.vision_feature_select_strategy == "default" else hidden


def caption_targets(tokenizer, captions: list[str], vocab: int) -> torch.Tensor:
    """Multi-hot ``(batch, vocab)``: which tokens occur in each caption (special tokens excluded)."""
    targets = torch.zeros(len(captions), vocab)
    for row, text in enumerate(captions):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        targets[row, [i for i in ids if i < vocab]] = 1.0
    return targets


def pretrain_vision_tower(model, processor, images: list, captions: list[str], *, epochs: float, lr: float,
                          batch_size: int, seed: int) -> dict:
    """Train ``model``'s vision tower on ``(image, caption)`` pairs in place; returns a small report.

    Every tower parameter is trained, nothing else of ``model`` is touched; ``images`` are PIL images.
    """
    from cvitkit.train import build_scheduler, clipped_step

    tower = model.model.vision_tower
    vocab = len(processor.tokenizer)
    hidden = tower.config.hidden_size * (1 if isinstance(model.config.vision_feature_layer, int)
                                         else len(model.config.vision_feature_layer))
    generator = torch.Generator().manual_seed(seed)
    head = torch.nn.Linear(hidden, vocab)
    with torch.no_grad():
        head.weight.normal_(0.0, 0.02, generator=generator)
        head.bias.fill_(-math.log(vocab))  # start from "no token is present": a sparse multi-hot target
    pixels = processor.image_processor(images=images, return_tensors="pt")["pixel_values"]
    targets = caption_targets(processor.tokenizer, captions, vocab)
    params = [*tower.parameters(), *head.parameters()]
    for p in tower.parameters():
        p.requires_grad_(True)
    total = max(1, math.ceil(len(images) / batch_size * epochs))
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    scheduler = build_scheduler(optimizer, "cosine", 0.03, total)
    tower.train()
    curve, window, t0, step = [], [], time.time(), 0
    bar = tqdm(total=total, desc="pretrain vision tower", disable=None)
    while step < total:
        for index in torch.randperm(len(images), generator=generator).split(batch_size):
            if step >= total:
                break
            logits = head(patch_features(model, pixels[index]).mean(1))
            loss = F.binary_cross_entropy_with_logits(logits, targets[index])
            clipped_step(loss, params, optimizer, scheduler)
            window.append(loss.item())
            step += 1
            bar.update(1)
            if step % 50 == 0 or step == total:
                curve.append({"step": step, "loss": sum(window) / len(window)})
                window = []
    bar.close()
    tower.eval()
    return {"images": len(images), "steps": total, "train_seconds": round(time.time() - t0, 1), "loss_curve": curve}
