"""The object read-out: which patches stand for an object, and a linear read-out scored against the majority."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from cvitkit import object_readout
from cvitkit.errors import ConfigError
from cvitkit.object_readout import draw_pictures, linear_readout, object_features, readout_row


def test_a_linear_read_out_tells_separable_classes_apart_and_a_constant_feature_gives_the_majority():
    labels = ["car", "bus", "car", "car", "car", "car", "bus", "car"]
    fit = torch.tensor([True, True, True, True, False, False, False, False])
    separable = torch.tensor([[1.0, 0.0] if label == "car" else [0.0, 1.0] for label in labels], dtype=torch.double)
    # fitted: 3 cars, 1 bus; held out: 3 cars, 1 bus, so the fitted majority (car) scores 75
    assert linear_readout(separable, labels, fit) == (100.0, 75.0)
    constant = torch.ones(len(labels), 2, dtype=torch.double)
    readout, majority = linear_readout(constant, labels, fit)
    assert readout == majority == 75.0
    with pytest.raises(ValueError, match="both sides"):
        linear_readout(separable, labels, torch.ones(len(labels), dtype=torch.bool))


class _Processor:
    """Stands in for the image processor: one row of pixels per picture, which the fake tower ignores."""

    image_processor = staticmethod(lambda images, return_tensors: {"pixel_values": torch.zeros(len(images), 1)})


def _picture(objects, size=8):
    return SimpleNamespace(image=SimpleNamespace(size=(size, size)), truth={"objects": objects})


def test_each_object_is_the_mean_of_the_patches_centred_in_its_box(monkeypatch):
    # a 4x4 grid of patches (centres at 1, 3, 5 and 7 px of an 8 px side) whose feature is its own index
    monkeypatch.setattr("cvitkit.vision_pretrain.patch_features",
                        lambda model, pixels: torch.arange(16.0).repeat(len(pixels), 1)[..., None])
    car = {"kind": "car", "colour": "red", "box": [0, 0, 4, 4]}        # the top-left quarter: patches 0, 1, 4, 5
    dot = {"kind": "cone", "colour": "blue", "box": [7.2, 7.2, 7.8, 7.8]}  # no centre inside: the nearest, 15
    button = {"kind": "button", "colour": "red", "label": "play", "box": [4, 0, 8, 2]}  # patches 2 and 3
    rows = object_features(None, _Processor(), [_picture([car]), _picture([car, dot, button])])
    assert [(float(f), kind, colour, picture) for f, kind, colour, picture in rows] == \
        [(2.5, "car", "red", 0), (2.5, "car", "red", 1), (15.0, "cone", "blue", 1), (2.5, "play", "red", 1)]


def test_pictures_without_objects_and_unknown_tasks_are_refused(monkeypatch):
    monkeypatch.setattr(object_readout, "object_features", lambda *a: [])
    with pytest.raises(ConfigError, match="no drawn objects.*Fix"):
        readout_row(None, None, [_picture([])])
    from cvitkit.data import load_suite
    from cvitkit.profiles import load_profile

    with pytest.raises(ConfigError, match="no task 'Nope'.*'AD'"):
        draw_pictures(load_profile("mini"), load_suite("mllmcl_dcl"), "Nope", 4)


def test_a_drawn_tasks_pictures_carry_their_objects():
    from cvitkit.data import load_suite
    from cvitkit.profiles import load_profile

    pictures = draw_pictures(load_profile("mini"), load_suite("mllmcl_dcl"), "AD", 6)
    assert len(pictures) == 6 and all(p.truth["objects"] for p in pictures)
    kinds = {o["kind"] for p in pictures for o in p.truth["objects"]}
    assert kinds <= {"car", "truck", "bus", "sign", "cone", "person"}


def test_each_call_is_recorded_beside_the_merged_table(tmp_path):
    from cvitkit.object_readout import COLUMNS, write_table

    row = dict(zip(COLUMNS, ["coin", "GQA", "tiny-3m", 4, 9, 3, 50.0, 30.0, 2, 90.0, 60.0]))
    write_table(tmp_path, [row], {"suite": "coin"}, {"key": "abc", "weights_sha256": "0123"})
    write_table(tmp_path, [{**row, "kind read-out": 60.0}], {"suite": "coin"}, None)
    import json

    import pandas as pd

    table = pd.read_csv(tmp_path / "object_readout.csv")
    assert len(table) == 1 and table["kind read-out"].iloc[0] == 60.0   # the same key: replaced
    calls = json.loads((tmp_path / "object_readout.json").read_text())["calls"]
    assert [c["base_model"] for c in calls] == [{"key": "abc", "weights_sha256": "0123"}, None]
    assert all("git_commit" in c["provenance"] for c in calls)
