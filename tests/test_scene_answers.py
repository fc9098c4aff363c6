"""Scene-first grounding replies: what they list, and how their two steps are read."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

from cvitkit.data.option_answers import AGREEMENT_COLUMNS
from cvitkit.data.scene_answers import read_scene, scene_agreement, scene_reply
from cvitkit.data.synthetic import generate
from cvitkit.data.worked_answers import worked_records
from cvitkit.errors import DataError


def test_the_scene_lists_every_object_in_reading_order_then_looks_the_phrase_up():
    cells = ["top left", "top centre", "top right", "middle left", "middle centre", "middle right",
             "bottom left", "bottom centre", "bottom right"]
    for seed in range(40):
        s = generate("ground", "natural", {}, random.Random(seed), 64)
        reply = scene_reply(s)
        scene_text, _, answer = reply.partition(". ")
        # the scene: each object once, its cell worked out here from its pixel box, top row first
        expected = []
        for o in s.truth["objects"]:
            x1, y1, x2, y2 = o["box"]
            cell = f"{('top', 'middle', 'bottom')[(y1 + y2) * 3 // 128]} {('left', 'centre', 'right')[(x1 + x2) * 3 // 128]}"
            expected.append((f"{o['colour']} {o['kind']}", cell))
        assert read_scene(reply) == sorted(expected, key=lambda e: cells.index(e[1]))
        assert scene_text.count(", ") == len(expected) - 1
        # then the question's phrase without its article, the target's cell and the box the record answers
        phrase = s.truth["expr"].removeprefix("the ")
        target_cell = dict(expected)[f"{s.truth['target']['colour']} {s.truth['target']['kind']}"]
        assert answer == f"{phrase} {target_cell} {s.answer}"
        assert scene_agreement([reply], [s]) == dict(zip(AGREEMENT_COLUMNS, (100.0, 100.0)))


def _picture(expr: str):
    """A 64-pixel picture: the red car in the bottom-left cell (the target), a blue tree in the top centre."""
    car = {"kind": "car", "colour": "red", "box": [6, 42, 19, 58]}
    tree = {"kind": "tree", "colour": "blue", "box": [24, 2, 40, 18]}
    return SimpleNamespace(image=SimpleNamespace(size=(64, 64)), answer="[0.09, 0.66, 0.30, 0.91]",
                           truth={"objects": [car, tree], "target": car, "expr": expr})


def test_scene_agreement_matches_hand_counts():
    picture = _picture("the red car")
    replies = ["blue tree top centre, red car bottom left. red car bottom left [0.10, 0.65, 0.30, 0.90]",  # both
               "blue tree top centre, red car top right. red car top right [0.70, 0.05, 0.95, 0.30]",  # misplaced, follows
               "blue tree top centre, red car bottom left. red car bottom left [0.40, 0.05, 0.60, 0.30]",  # box on the tree
               "blue tree top centre. red car top centre [0.40, 0.05, 0.60, 0.30]",   # the car is not in the scene
               ""]
    assert scene_agreement(replies, [picture] * 5) == dict(zip(AGREEMENT_COLUMNS, (40.0, 40.0)))


def test_a_phrase_without_colour_names_the_one_object_of_its_kind():
    picture = _picture("the car")
    assert scene_reply(picture).endswith(". car bottom left [0.09, 0.66, 0.30, 0.91]")
    one_car = "blue tree top centre, red car bottom left. car bottom left [0.10, 0.65, 0.30, 0.90]"
    two_cars = "blue car top centre, red car bottom left. car bottom left [0.10, 0.65, 0.30, 0.90]"
    result = scene_agreement([one_car, two_cars], [picture] * 2)
    # both scenes place the red car right; only the first names one car, so only its box follows a lookup
    assert result == dict(zip(AGREEMENT_COLUMNS, (100.0, 50.0)))


def test_scene_replies_rewrite_grounding_records_and_refuse_other_samples():
    s = generate("ground", "natural", {}, random.Random(3), 64)
    record = {"id": "Grounding_train_00003", "conversations": [{"from": "human", "value": f"<image>\n{s.question}"},
                                                                {"from": "gpt", "value": s.answer}]}
    rewritten = worked_records([record], [s], reply=scene_reply)[0]
    assert rewritten["conversations"][1]["value"] == scene_reply(s) and record["conversations"][1]["value"] == s.answer
    math = generate("math", "diagram", {"mode": "digits", "ops": ["+"]}, random.Random(0), 32)
    with pytest.raises(DataError, match="record 'm1'.*not a grounding, GUI, VQA or relation one.*Fix"):
        scene_reply(math, {"id": "m1"})
    with pytest.raises(ValueError, match="equally many"):
        scene_agreement(["x"], [])


def test_a_gui_scene_names_each_button_by_its_label_and_ends_with_the_click():
    for seed in range(20):
        s = generate("gui", "gui", {}, random.Random(seed), 64)
        reply = scene_reply(s)
        labels = [o["label"] for o in s.truth["objects"]]
        scene = read_scene(reply)
        assert sorted(name for name, _ in scene) == sorted(labels)
        target = s.truth["target"]["label"]
        assert reply.endswith(f". {target} {dict(scene)[target]} {s.answer}") and s.answer.startswith("(")
        assert scene_agreement([reply], [s]) == dict(zip(AGREEMENT_COLUMNS, (100.0, 100.0)))
    # a click in another cell than the scene gives the named button does not follow the reading
    wrong = reply.rpartition("(")[0] + ("(0.10, 0.10)" if dict(scene)[target] != "top left" else "(0.90, 0.90)")
    assert scene_agreement([wrong], [s]) == dict(zip(AGREEMENT_COLUMNS, (100.0, 0.0)))
