"""Stage 0 of the base model: the vision tower learns from captions of every domain, then stays frozen."""

import copy
import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from cvitkit.vision_pretrain import (
    caption_targets,
    object_targets,
    patch_features,
    position_loss,
    position_readout,
    position_targets,
    pretrain_vision_tower,
)
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


def test_position_targets_follow_the_towers_row_major_patch_order(micro_llava):
    rows, cols = position_targets(16)
    assert rows.tolist() == [0] * 4 + [1] * 4 + [2] * 4 + [3] * 4
    assert cols.tolist() == [0, 1, 2, 3] * 4
    with pytest.raises(ValueError, match="square grid"):
        position_targets(12)
    # the tower's patch 5 (row 1, col 1 of a 4x4 grid) is the image's pixels [8:16, 8:16]
    model, processor = micro_llava
    conv = model.model.vision_tower.embeddings.patch_embedding
    pixels = torch.zeros(1, 3, 32, 32)
    pixels[:, :, 8:16, 8:16] = 1.0
    with torch.no_grad():
        patches = conv(pixels).flatten(2).transpose(1, 2)[0]  # as CLIPVisionEmbeddings orders them
        empty = conv(torch.zeros(1, 3, 32, 32)).flatten(2).transpose(1, 2)[0]
    moved = (patches - empty).abs().sum(-1).nonzero().flatten().tolist()
    assert moved == [5] and (rows[5], cols[5]) == (1, 1)


def test_position_loss_is_the_mean_cross_entropy_of_row_and_column():
    torch.manual_seed(0)
    features = torch.randn(2, 9, 5)
    rows, cols = torch.nn.Linear(5, 3), torch.nn.Linear(5, 3)
    expected = 0.0
    for b in range(2):
        for i in range(9):
            row_nll = -torch.log_softmax(rows(features[b, i]), -1)[i // 3]
            col_nll = -torch.log_softmax(cols(features[b, i]), -1)[i % 3]
            expected += row_nll + col_nll
    torch.testing.assert_close(position_loss(features, rows, cols), expected / (2 * 2 * 9))
    # features that spell out the position, read by matching heads, cost almost nothing
    onehot = torch.eye(9).repeat(2, 1, 1) * 50.0
    perfect_rows, perfect_cols = torch.nn.Linear(9, 3, bias=False), torch.nn.Linear(9, 3, bias=False)
    with torch.no_grad():
        perfect_rows.weight.copy_(torch.tensor([[float(i // 3 == r) for i in range(9)] for r in range(3)]))
        perfect_cols.weight.copy_(torch.tensor([[float(i % 3 == c) for i in range(9)] for c in range(3)]))
    assert position_loss(onehot, perfect_rows, perfect_cols) < 1e-6


def test_position_readout_scores_a_linear_read_out_of_row_and_column(micro_llava):
    model, processor = micro_llava
    images = [make_image(32, c) for c in ["red", "blue", "green", "yellow"] * 2]
    scores = position_readout(model, processor, images)
    assert set(scores) == {"row", "column"} and all(s <= 1.0 for s in scores.values())
    # a tower whose features are the bare position embeddings (no image content) is read perfectly
    blind = copy.deepcopy(model)
    with torch.no_grad():
        blind.model.vision_tower.embeddings.patch_embedding.weight.zero_()
    blind.config.vision_feature_layer = 0  # the embeddings: position only, through the pre-layer norm
    assert min(position_readout(blind, processor, images).values()) > 0.999
    with pytest.raises(ValueError, match="at least two images"):
        position_readout(model, processor, images[:1])


def test_position_term_trains_heads_that_read_every_patchs_place(micro_llava):
    colours = ["red", "blue", "green", "yellow"] * 4
    images = [make_image(32, c) for c in colours]
    captions = [f"a {c} box" for c in colours]
    plain = pretrain_vision_tower(copy.deepcopy(micro_llava[0]), micro_llava[1], images, captions, epochs=5,
                                  lr=3e-3, batch_size=8, seed=0)
    assert plain["position_weight"] == 0.0 and "position_loss" not in plain["loss_curve"][-1]
    model = copy.deepcopy(micro_llava[0])
    images, captions = [i for i in images for _ in range(2)], [c for c in captions for _ in range(2)]
    # each picture twice in a row: the read-out fits on even, scores on odd ones, so both halves see every colour
    report = pretrain_vision_tower(model, micro_llava[1], images, captions, epochs=30, lr=3e-3, batch_size=8,
                                   seed=0, position_weight=1.0)
    first, last = report["loss_curve"][0]["position_loss"], report["loss_curve"][-1]["position_loss"]
    assert last < 0.2 < first and last < first / 3  # chance is ln 4 (4 rows, 4 columns)
    assert position_readout(model, micro_llava[1], images)["column"] > 0.9


def _micro_base_profile(profile):
    """``profile`` pretraining a micro base model with a stage 0, in a few seconds."""
    base = replace(profile.base, train_per_task=4, test_per_task=2, epochs=1.0, batch_size=4,
                   vision_suite="vision_pretrain", vision_train_per_task=2, vision_epochs=1.0, vision_batch_size=8)
    return replace(profile, model=replace(profile.model, source="base"), base=base)


@pytest.mark.slow
def test_base_model_with_stage_zero_keeps_the_tower_frozen_afterwards(micro_smoke_profile):
    from cvitkit.base_model import base_dir_for, ensure_base_model
    from cvitkit.data import corpus

    profile = _micro_base_profile(micro_smoke_profile())
    base = profile.base
    folder = ensure_base_model(profile, log=lambda *_: None)
    report = json.loads((folder / "base.json").read_text())
    assert report["vision_stage"]["images"] == 2 * 14 and report["vision_stage"]["steps"] == 4
    # the read-out recorded at pretraining is what the saved model gives again
    from cvitkit.base_model import tower_position_readout

    recorded = report["vision_stage"]["position_readout"]
    assert set(recorded) == {"row", "column"}
    again = tower_position_readout(profile, folder)
    assert again == pytest.approx(recorded, abs=1e-6)
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


def test_a_position_term_makes_another_base_model():
    from cvitkit.base_model import base_key
    from cvitkit.data import corpus
    from cvitkit.profiles import load_profile

    mini = load_profile("mini")
    lines = corpus()
    keys = {w: base_key(replace(mini, base=replace(mini.base, vision_position_weight=w)), lines)
            for w in (0.0, 0.5, 1.0)}
    assert len(set(keys.values())) == 3
    assert keys[0.0] == base_key(mini, lines)
    # so does an object term, and an unset one leaves the cached base models' keys alone
    objects = {w: base_key(replace(mini, base=replace(mini.base, vision_object_weight=w)), lines) for w in (0.0, 1.0)}
    assert objects[0.0] == keys[0.0] and objects[1.0] not in keys.values()


def test_domain_captions_make_another_base_model_and_need_a_stage_zero(micro_smoke_profile):
    from cvitkit.base_model import _every_domain_captions, base_key
    from cvitkit.data import corpus
    from cvitkit.data.dataset import load_image
    from cvitkit.errors import ConfigError
    from cvitkit.profiles import load_profile

    mini, lines = load_profile("mini"), corpus()
    captioned = replace(mini, base=replace(mini.base, caption_every_domain=True))
    assert base_key(captioned, lines) != base_key(mini, lines)
    # left off, the option keeps the key of the base models cached before it existed
    assert base_key(replace(mini, base=replace(mini.base, caption_every_domain=False)), lines) == base_key(mini, lines)
    # the LLaVA stage's extra records are stage 0's, with image paths that need no image root
    profile = micro_smoke_profile()
    profile = replace(profile, base=replace(profile.base, vision_suite="vision_pretrain", vision_train_per_task=1,
                                            caption_every_domain=True))
    records = _every_domain_captions(profile)
    assert len(records) == 14 and {r["id"].rsplit("_", 2)[0] for r in records} >= {"Caption-medical", "Caption-driving"}
    for i, record in enumerate(records):
        assert Path(record["image"]).is_absolute() and load_image(record, "/elsewhere", i).size == (32, 32)
    with pytest.raises(ConfigError, match="base.vision_suite is empty.*Fix"):
        _every_domain_captions(replace(profile, base=replace(profile.base, vision_suite="")))


@pytest.mark.slow
def test_a_base_model_with_domain_captions_trains_on_them_and_keeps_the_same_tower(micro_smoke_profile):
    from transformers import LlavaForConditionalGeneration

    from cvitkit.base_model import ensure_base_model

    plain = _micro_base_profile(micro_smoke_profile())
    captioned = replace(plain, base=replace(plain.base, caption_every_domain=True))
    folders = [ensure_base_model(p, log=lambda *_: None) for p in (plain, captioned)]
    reports = [json.loads((f / "base.json").read_text()) for f in folders]
    # the LLaVA stage read the pretraining suite's records (2 tasks x 4) plus stage 0's (14 tasks x 2)
    assert [r["samples"] for r in reports] == [8, 8 + 28]
    assert reports[1]["steps"] > reports[0]["steps"]
    weights = [dict(LlavaForConditionalGeneration.from_pretrained(f).named_parameters()) for f in folders]
    tower = [n for n in weights[0] if n.startswith("model.vision_tower.")]
    for n in tower:  # stage 0 is the same; only the stages after it differ
        torch.testing.assert_close(weights[0][n].detach(), weights[1][n].detach(), rtol=0, atol=0)
    assert not torch.equal(weights[0]["lm_head.weight"], weights[1]["lm_head.weight"])


def test_object_targets_mark_each_patch_with_the_kind_whose_box_holds_its_centre():
    # 4x4 patches, centres at 0.125, 0.375, 0.625, 0.875 of the side
    targets, kinds = object_targets([[{"kind": "car", "box": [0.0, 0.0, 0.5, 0.5]}],
                                     [{"kind": "bus", "box": [0.5, 0.5, 1.0, 1.0]},
                                      {"kind": "car", "box": [0.7, 0.0, 1.0, 0.3]}],
                                     []], 16)
    assert kinds == ["bus", "car"]
    expected = torch.zeros(3, 4, 4, dtype=torch.long)
    expected[0, :2, :2] = 2                    # car: top-left quarter
    expected[1, 2:, 2:] = 1                    # bus: bottom-right quarter
    expected[1, 0, 3] = 2                      # car: the one patch centred in x 0.7-1.0, y 0-0.3
    torch.testing.assert_close(targets, expected.reshape(3, 16))
    # a later object is drawn on top: its kind wins where boxes overlap
    over, _ = object_targets([[{"kind": "bus", "box": [0, 0, 1, 1]}, {"kind": "car", "box": [0, 0, 0.5, 1]}]], 4)
    assert over.tolist() == [[2, 1, 2, 1]]
    with pytest.raises(ValueError, match="square grid"):
        object_targets([[]], 12)


def test_object_term_trains_a_head_that_tells_the_kinds_apart(micro_llava):
    colours = ["red", "blue", "green", "yellow"] * 4
    images = [make_image(32, c) for c in colours]
    captions = [f"a {c} box" for c in colours]
    # the kind follows the picture (red and green: cars, blue and yellow: buses), covering all of it
    objects = [[{"kind": "car" if c in ("red", "green") else "bus", "box": [0, 0, 1, 1]}] for c in colours]
    model = copy.deepcopy(micro_llava[0])
    report = pretrain_vision_tower(model, micro_llava[1], images, captions, epochs=30, lr=3e-3, batch_size=8,
                                   seed=0, object_weight=1.0, objects=objects)
    first, last = report["loss_curve"][0]["object_loss"], report["loss_curve"][-1]["object_loss"]
    assert report["object_weight"] == 1.0 and last < 0.1 < first   # chance: ln 3 (background, bus, car)
    with pytest.raises(ValueError, match="needs each image's objects"):
        pretrain_vision_tower(copy.deepcopy(micro_llava[0]), micro_llava[1], images, captions, epochs=1, lr=3e-3,
                              batch_size=8, seed=0, object_weight=1.0)


def test_stage_zero_objects_are_the_drawn_objects_of_each_record_and_a_changed_caption_is_named(micro_smoke_profile):
    from cvitkit.base_model import _vision_objects, _vision_records
    from cvitkit.data import load_suite
    from cvitkit.data.build import draw_sample, sample_index
    from cvitkit.errors import DataError

    profile = micro_smoke_profile()
    profile = replace(profile, base=replace(profile.base, vision_suite="vision_pretrain", vision_train_per_task=1))
    records, _, tasks = _vision_records(profile)
    objects = _vision_objects(profile, records)
    assert len(objects) == len(records) == tasks
    specs = {t.name: t for t in load_suite("vision_pretrain").tasks}
    for record, listed in zip(records, objects):
        task = record["id"].rsplit("_", 2)[0]
        sample = draw_sample("vision_pretrain", specs[task], *sample_index(record["id"]), profile.data.seed,
                             profile.data.image_size, profile.data.instructions)
        size = sample.image.size[0]
        assert listed == [{"kind": o["kind"], "box": [v / size for v in o["box"]]} for o in sample.truth["objects"]]
        assert all(0 <= v <= 1 for o in listed for v in o["box"])
    changed = {**records[0], "conversations": [records[0]["conversations"][0], {"from": "gpt", "value": "a cat"}]}
    with pytest.raises(DataError, match=f"stage-0 record '{records[0]['id']}'.*Fix: delete"):
        _vision_objects(profile, [changed])
