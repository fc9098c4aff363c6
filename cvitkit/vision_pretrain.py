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

with :math:`h_i` the tower's patch features at the layer LLaVA reads (``vision_feature_layer``).

Mean pooling makes that loss blind to *where* a thing is, and the tower learns to drop the position
embeddings: a linear read-out (:func:`position_readout`) of the caption-only ``mini`` tower's patch
features recovers a patch's column with held-out R² 0.06 and its row with 0.47 (row mostly because
backgrounds change with height); with the position term below, 0.92 and 0.92. A language model reads
an image token's content, not its place (rotary positions shape attention, not values), so tasks
answered with coordinates (grounding boxes, click points) have little to go on. A real CLIP tower
keeps its patches' positions. With ``position_weight`` > 0 each patch also predicts its own row and column
through linear heads (patch position prediction, Zhai et al., ICML 2022):

.. math::

    \\mathcal{L} = \\mathcal{L}_{\\text{BoW}} + \\frac{\\lambda}{2N}\\sum_{i=1}^{N}
        \\big[\\mathrm{CE}(R\\,h_i, \\mathrm{row}_i) + \\mathrm{CE}(C\\,h_i, \\mathrm{col}_i)\\big]

which keeps position linearly readable from every patch. The captions name each object's kind, but
a bag of words pooled over a picture with two or three small objects hardly ties a kind to the patches
that show it: a linear read-out of the caption-only tower's features over an object's own patches
(:mod:`cvitkit.object_readout`) tells its colour 76 to 100 % of the time and its kind 30 to 58 %
(majorities 12 to 26 %; ``results/mini/tables/object_readout.md``).
With ``object_weight`` > 0 each patch also predicts the kind of the drawn object covering its centre,
or background (a dense labelling term, as detection- and segmentation-aware towers are trained with):

.. math::

    \\mathcal{L} \\mathrel{+}= \\frac{\\mu}{N}\\sum_{i=1}^{N} \\mathrm{CE}(K\\,h_i, \\mathrm{kind}_i)

with the kinds of every domain of the vision suite as classes (the synthetic images are drawn again
from their seeds to know where each object is). At the profile's 4 epochs it lifts the read-out of
kinds to 49 to 74 %; at 20 epochs (``base.vision_epochs``) to 60 to 87 % on DCL Med, AD, CoIN GQA and
VQAv2, where 20 epochs of the caption term alone leave it where 4 do. All heads are discarded afterwards; the
language model and the projector never see these images or captions, so the continual tasks stay new
to the instruction-following part of the model.
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


def position_targets(patches: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column of each of ``patches`` patch tokens, in the tower's row-major order."""
    side = math.isqrt(patches)
    if side * side != patches:
        raise ValueError(f"patch position prediction needs a square grid of patches, got {patches}.")
    index = torch.arange(patches)
    return index // side, index % side


def position_loss(features: torch.Tensor, rows: torch.nn.Linear, cols: torch.nn.Linear) -> torch.Tensor:
    """Mean cross-entropy of predicting each patch's row and column from its features ``(B, N, H)``."""
    batch, patches, _ = features.shape
    row, col = (t.repeat(batch) for t in position_targets(patches))
    flat = features.reshape(batch * patches, -1)
    return 0.5 * (F.cross_entropy(rows(flat), row) + F.cross_entropy(cols(flat), col))


def patch_centres(side: int) -> torch.Tensor:
    """Centres of a row (or column) of ``side`` patches, as fractions of the picture's side."""
    return (torch.arange(side, dtype=torch.double) + 0.5) / side


def patches_in_box(box, centres: torch.Tensor) -> torch.Tensor:
    """``(side, side)`` mask, row-major, of the patches whose centre (:func:`patch_centres`) lies in
    ``box`` (normalised ``x1, y1, x2, y2``, edges included)."""
    x1, y1, x2, y2 = box
    return ((centres >= y1) & (centres <= y2))[:, None] & ((centres >= x1) & (centres <= x2))[None, :]


def object_targets(objects: list[list[dict]], patches: int) -> tuple[torch.Tensor, list[str]]:
    """``(images, patches)`` class of each patch: 0 for background, ``1 + k`` for the ``k``-th kind of
    the returned sorted kind list when the patch's centre lies in an object's box (normalised ``x1, y1,
    x2, y2``; a later object, drawn on top, wins). ``objects`` lists each image's objects."""
    side = math.isqrt(patches)
    if side * side != patches:
        raise ValueError(f"the patch-object term needs a square grid of patches, got {patches}.")
    kinds = sorted({o["kind"] for image in objects for o in image})
    centres = patch_centres(side)
    targets = torch.zeros(len(objects), side, side, dtype=torch.long)
    for row, image in enumerate(objects):
        for o in image:
            targets[row][patches_in_box(o["box"], centres)] = 1 + kinds.index(o["kind"])
    return targets.reshape(len(objects), patches), kinds


def pretrain_vision_tower(model, processor, images: list, captions: list[str], *, epochs: float, lr: float,
                          batch_size: int, seed: int, position_weight: float = 0.0, object_weight: float = 0.0,
                          objects: list[list[dict]] | None = None) -> dict:
    """Train ``model``'s vision tower on ``(image, caption)`` pairs in place; returns a small report.

    Every tower parameter is trained, nothing else of ``model`` is touched; ``images`` are PIL images.
    ``position_weight`` (λ above) weighs the patch-position term, ``object_weight`` (μ) the patch-object
    term, which needs ``objects`` (each image's drawn objects, kind and normalised box); 0 trains on
    captions alone.
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
    if position_weight:
        side = tower.config.image_size // tower.config.patch_size
        rows, cols = torch.nn.Linear(hidden, side), torch.nn.Linear(hidden, side)
        params += [*rows.parameters(), *cols.parameters()]
    if object_weight:
        if objects is None or len(objects) != len(images):
            raise ValueError("the patch-object term needs each image's objects (kind and box), one list per image.")
        kind_targets, kinds = object_targets(objects, (tower.config.image_size // tower.config.patch_size) ** 2)
        kind_head = torch.nn.Linear(hidden, 1 + len(kinds))
        params += [*kind_head.parameters()]
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
            features = patch_features(model, pixels[index])
            loss = F.binary_cross_entropy_with_logits(head(features.mean(1)), targets[index])
            where = position_loss(features, rows, cols) if position_weight else torch.zeros(())
            what = (F.cross_entropy(kind_head(features).flatten(0, 1), kind_targets[index].flatten())
                    if object_weight else torch.zeros(()))
            clipped_step(loss + position_weight * where + object_weight * what, params, optimizer, scheduler)
            window.append((loss.item(), where.item(), what.item()))
            step += 1
            bar.update(1)
            if step % 50 == 0 or step == total:
                point = {"step": step, "loss": sum(w[0] for w in window) / len(window)}
                if position_weight:
                    point["position_loss"] = sum(w[1] for w in window) / len(window)
                if object_weight:
                    point["object_loss"] = sum(w[2] for w in window) / len(window)
                curve.append(point)
                window = []
    bar.close()
    tower.eval()
    return {"images": len(images), "steps": total, "train_seconds": round(time.time() - t0, 1), "loss_curve": curve,
            "position_weight": position_weight, "object_weight": object_weight}


def position_readout(model, processor, images: list) -> dict[str, float]:
    """How well a linear map reads each patch's row and column from the tower's patch features.

    Least squares is fitted on the patches of the even-numbered ``images`` and scored on the odd ones;
    returns held-out :math:`R^2 = 1 - \\sum (\\hat y - y)^2 / \\sum (y - \\bar y)^2` for ``row``
    and ``column`` (1: position fully readable, 0: no better than the mean position).
    """
    if len(images) < 2:
        raise ValueError("position_readout needs at least two images: it fits on the even ones and scores the "
                         "odd ones.")
    pixels = processor.image_processor(images=images, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        feats = patch_features(model, pixels).double()
    batch, patches, hidden = feats.shape
    x = torch.cat([feats, torch.ones(batch, patches, 1, dtype=torch.double)], -1)
    fit_x, held_x = x[0::2].reshape(-1, hidden + 1), x[1::2].reshape(-1, hidden + 1)
    scores = {}
    for name, target in zip(("row", "column"), position_targets(patches)):
        y = target.double()[None, :, None]
        fit_y, held = y.expand(len(x[0::2]), -1, -1).reshape(-1, 1), y.expand(len(x[1::2]), -1, -1).reshape(-1, 1)
        fit = held_x @ torch.linalg.lstsq(fit_x, fit_y).solution
        scores[name] = float(1 - ((fit - held) ** 2).sum() / ((held - held.mean()) ** 2).sum())
    return scores
