"""Where a grounding box or GUI click lands: the named object, another one (of its colour, of its kind), none."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from PIL import Image

from cvitkit.eval.parsed_scorers import final_part
from cvitkit.eval.scorers import score
from cvitkit.eval.targets import TARGET_COLUMNS, landed_on, target_hits

SIDE = 64
RED_CAR = {"kind": "car", "colour": "red", "box": [0, 0, 16, 16]}
RED_BALL = {"kind": "ball", "colour": "red", "box": [32, 0, 48, 16]}
BLUE_CAR = {"kind": "car", "colour": "blue", "box": [0, 32, 16, 48]}
GREEN_TREE = {"kind": "tree", "colour": "green", "box": [32, 32, 48, 48]}


def _sample(objects, target):
    return SimpleNamespace(truth={"objects": objects, "target": target}, image=Image.new("RGB", (SIDE, SIDE)))


def _box(obj, shift=0.0):
    x1, y1, x2, y2 = (v / SIDE for v in obj["box"])
    return f"[{x1 + shift:.3f}, {y1:.3f}, {x2 + shift:.3f}, {y2:.3f}]"


def test_a_box_lands_on_the_object_it_overlaps_by_more_than_half_and_a_point_on_the_box_holding_it():
    objects = [RED_CAR, RED_BALL, BLUE_CAR]
    assert landed_on(_box(RED_BALL), objects, SIDE) == 1
    # shifted by a tenth of the picture (6.4 of 16 pixels): IoU 9.6/22.4 = 0.43, on nothing
    assert landed_on(_box(RED_BALL, shift=0.1), objects, SIDE) is None
    assert landed_on(_box(RED_BALL, shift=0.05), objects, SIDE) == 1   # IoU 12.8/19.2 = 0.67
    assert landed_on("(0.1, 0.6)", objects, SIDE) == 2
    assert landed_on("(0.25, 0.25)", objects, SIDE) == 0              # on the edge: inside, as the scorer says
    assert landed_on("(0.9, 0.9)", objects, SIDE) is None
    assert landed_on("no box here", objects, SIDE) is None


def test_hits_count_the_named_object_the_wrong_ones_by_colour_and_kind_and_a_random_objects_share():
    two = [RED_CAR, RED_BALL]
    four = [RED_CAR, RED_BALL, BLUE_CAR, GREEN_TREE]
    samples = [_sample(two, RED_CAR), _sample(four, RED_CAR), _sample(four, RED_CAR), _sample(four, RED_CAR)]
    answers = [_box(RED_CAR),      # the named one
               _box(RED_BALL),     # another red object
               _box(BLUE_CAR),     # another car
               "[0.9, 0.9, 1.0, 1.0]"]  # nothing
    hits = target_hits(answers, samples)
    assert list(hits) == list(TARGET_COLUMNS)
    assert hits == pytest.approx({"on an object": 75.0, "on the named object": 25.0,
                                  "on another of its colour": 25.0, "on another of its kind": 25.0,
                                  # (1/2 + 1/4 + 1/4 + 1/4) / 4
                                  "a random object": 100 * 1.25 / 4})


def test_on_the_named_object_is_the_grounding_and_gui_scores():
    four = [RED_CAR, RED_BALL, BLUE_CAR, GREEN_TREE]
    reference = _box(BLUE_CAR)
    boxes = [_box(BLUE_CAR), _box(BLUE_CAR, shift=0.05), _box(BLUE_CAR, shift=0.1), _box(RED_CAR)]
    samples = [_sample(four, BLUE_CAR)] * len(boxes)
    assert target_hits(boxes, samples)["on the named object"] == score("iou", boxes, [reference] * 4).score == 50
    points = ["(0.1, 0.6)", "(0.5, 0.6)", "(0.1, 0.1)", "(0.6, 0.6)"]
    assert target_hits(points, samples)["on the named object"] == pytest.approx(
        score("point_in_box", points, [reference] * 4).score) == 25


def test_the_answer_of_a_worked_or_scene_first_reply_is_what_follows_its_last_separator():
    assert final_part("bottom left [0.1, 0.6, 0.3, 0.9]", "[") == "[0.1, 0.6, 0.3, 0.9]"
    scene = "red car top left [0.0, 0.0, 0.2, 0.2], blue car bottom left [0.0, 0.5, 0.2, 0.7]. blue car (0.1, 0.6)"
    assert final_part(scene, "(") == "(0.1, 0.6)"
    assert final_part("down up no", " ") == "no"
    assert final_part("[0.1, 0.2, 0.3, 0.4]", "=") == "[0.1, 0.2, 0.3, 0.4]"  # no separator: the whole reply


def test_hits_need_one_answer_per_sample():
    with pytest.raises(ValueError, match="as many answers as samples"):
        target_hits(["[0, 0, 1, 1]"], [])
