"""Stage 0 of the base model: the vision tower learns from captions of every domain, then stays frozen."""

import copy
import json
from dataclasses import replace

import pytest
import torch

from cvitkit.vision_pretrain import caption_targets, patch_features, pretrain_vision_tower
from tests.conftest import make_image


def test_caption_targets_mark_exactly_the_caption_tokens(micro_llava):
    _, processor = micro_llava
    tok = processor.tokenizer
    vocab = len(tok)
    targets = caption_targets(tok, ["a red ball", "red"], vocab)
    assert targets.shape == (2, vocab)
    for row, text in enumerate(["a red ball", "red"]):
        ids = set(tok(text, add_special_tokens=False)["input_ids"])
        assert set(torch.nonzero(targets[row]).flatten().tolist()) == ids
    assert targets[1].sum() < targets[0].sum()


def test_patch_features_are_what_the_projector_reads(micro_llava):
    model, processor = micro_llava
    pixels = processor.image_processor(images=[make_image(32), make_image(32, "blue")], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        feats = patch_features(model, pixels)
        ours = model.model.multi_modal_projector(feats)
        theirs = model.model.get_image_features(pixel_values=pixels)
    theirs = theirs.pooler_output if hasattr(theirs, "pooler_output") else theirs
    theirs = torch.stack(list(theirs)) if isinstance(theirs, (list, tuple)) else theirs
    torch.testing.assert_close(ours.reshape(theirs.shape), theirs)


def test_stage_zero_trains_the_tower_only_and_lowers_its_loss(micro_llava):
    model, processor = copy.deepcopy(micro_llava[0]), micro_llava[1]
    colours = ["red", "blue", "green", "yellow"] * 4
    images = [make_image(32, c) for c in colours]
    captions = [f"a {c} box" for c in colours]
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    report = pretrain_vision_tower(model, processor, images, captions, epochs=30, lr=3e-3, batch_size=8, seed=0)
    assert report["steps"] == 60 and report["images"] == 16
    assert report["loss_curve"][-1]["loss"] < 0.5 * report["loss_curve"][0]["loss"]
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all(n.startswith("model.vision_tower.") for n in changed)


@pytest.mark.slow
def test_base_model_with_stage_zero_keeps_the_tower_frozen_afterwards(micro_smoke_profile):
    from cvitkit.base_model import base_dir_for, ensure_base_model
    from cvitkit.data import corpus

    profile = micro_smoke_profile()
    base = replace(profile.base, train_per_task=4, test_per_task=2, epochs=1.0, batch_size=4,
                   vision_suite="vision_pretrain", vision_train_per_task=2, vision_epochs=1.0, vision_batch_size=8)
    profile = replace(profile, model=replace(profile.model, source="base"), base=base)
    folder = ensure_base_model(profile, log=lambda *_: None)
    report = json.loads((folder / "base.json").read_text())
    assert report["vision_stage"]["images"] == 2 * 14 and report["vision_stage"]["steps"] == 4
    # a different vision suite setting is a different base model
    other = replace(profile, base=replace(base, vision_suite=""))
    assert base_dir_for(other, corpus()) != folder
    # the LLaVA stage did not move the tower: a stage-0-only rerun gives the saved tower exactly
    from transformers import LlavaForConditionalGeneration

    from cvitkit.base_model import _pretrain_vision
    from cvitkit.models import build_tiny_llava

    saved = dict(LlavaForConditionalGeneration.from_pretrained(folder).named_parameters())

    fresh, processor = build_tiny_llava(profile.model.preset, corpus=corpus(), seed=base.seed,
                                        image_size=profile.data.image_size)
    torch.manual_seed(base.seed)
    _pretrain_vision(profile, fresh, processor, log=lambda *_: None)
    tower = {n: p for n, p in fresh.named_parameters() if n.startswith("model.vision_tower.")}
    assert tower and all(not p.requires_grad for p in tower.values())
    for n, p in tower.items():
        torch.testing.assert_close(saved[n].detach(), p.detach(), rtol=0, atol=0)
