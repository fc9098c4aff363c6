"""Scene-first replies to VQA and relation questions: what they list and copy, and how their steps are read."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

from cvitkit.data.option_answers import AGREEMENT_COLUMNS
from cvitkit.data.scene_answers import SCENE_FAMILIES, scene_agreement, scene_reply
from cvitkit.data.scene_questions import answer_from_scene
from cvitkit.data.scene_text import read_scene
from cvitkit.data.synthetic import generate
from cvitkit.errors import DataError
from cvitkit.eval.scorers import score

CELLS = [f"{r} {c}" for r in ("top", "middle", "bottom") for c in ("left", "centre", "right")]
SETTINGS = [("relation", "driving", {"questions": ["side", "vertical", "yesno", "which"]}),
            ("relation", "natural", {}),
            ("vqa", "medical", {"questions": ["presence", "kind", "colour", "count"], "count_max": 4}),
            ("vqa", "natural", {})]


def _cell(o: dict, size: int = 64) -> str:
    x1, y1, x2, y2 = o["box"]
    row, column = (y1 + y2) * 3 // (2 * size), (x1 + x2) * 3 // (2 * size)
    return f"{('top', 'middle', 'bottom')[row]} {('left', 'centre', 'right')[column]}"


def _entry(o: dict) -> str:
    return f"{o['colour']} {o['kind']} {_cell(o)}"


def _asked_about(s) -> list[dict]:
    """The objects each question type is about, worked out here from the question's own words."""
    t, words = s.truth, s.question.lower().rstrip("?.").split()
    if t["question"] in ("side", "vertical", "yesno"):
        return [t["a"], t["b"]]
    if t["question"] in ("which", "colour_of"):
        return [t["b"], t["a"]]
    if t["question"] == "colour":       # "What colour is the <kind>?"
        return [o for o in t["objects"] if o["kind"] in words]
    if t["question"] == "kind":         # "What is the <colour> object?"
        return [o for o in t["objects"] if o["colour"] in words]
    if t["question"] == "count":        # "How many <kinds> ...": the plural starts with the kind
        return [o for o in t["objects"] if any(w.startswith(o["kind"]) for w in words)]
    return [o for o in t["objects"] if o["colour"] in words and o["kind"] in words]   # presence


@pytest.mark.parametrize("family, domain, opts", SETTINGS)
def test_the_reply_lists_the_scene_copies_what_is_asked_about_then_answers(family, domain, opts):
    for seed in range(60):
        s = generate(family, domain, opts, random.Random(seed), 64)
        reply = scene_reply(s)
        scene, _, rest = reply.partition(". ")
        copied, _, answer = rest.rpartition(": ")
        expected = sorted((_entry(o) for o in s.truth["objects"]), key=lambda e: CELLS.index(" ".join(e.split()[-2:])))
        assert scene.split(", ") == expected
        assert copied == (", ".join(_entry(o) for o in _asked_about(s)) or "none")
        assert answer == s.answer
        # the task's own scorer, on the word after the last colon, gives full marks
        assert score("final_answer", [reply], [s.answer], scorer="exact_match",
                     after=SCENE_FAMILIES[family]).per_sample == [1.0]
        assert scene_agreement([reply], [s]) == dict(zip(AGREEMENT_COLUMNS, (100.0, 100.0)))


def _picture(question: str, answer: str, **terms):
    """A 64-pixel road: a red car in the middle-left cell, a blue bus in the bottom-right one."""
    car = {"kind": "car", "colour": "red", "box": [2, 26, 20, 40]}
    bus = {"kind": "bus", "colour": "blue", "box": [44, 44, 62, 62]}
    truth = {"objects": [car, bus], "question": question, "a": car, "b": bus, **terms}
    return SimpleNamespace(image=SimpleNamespace(size=(64, 64)), answer=answer, truth=truth)


def test_scene_agreement_matches_hand_counts_for_a_relation():
    side = _picture("side", "left", relation="left")
    scene = "red car middle left, blue bus bottom right. "
    replies = [scene + "red car middle left, blue bus bottom right: left",      # both
               "red car middle right, blue bus bottom left. x: right",          # misplaced, follows its scene
               scene + "red car middle left, blue bus bottom right: right",     # read right, wrong last step
               "red car middle left. red car middle left: left",                # the bus is missing: open
               scene + "left"]                                                  # no answer after a colon
    assert scene_agreement(replies, [side] * 5) == dict(zip(AGREEMENT_COLUMNS, (60.0, 40.0)))


@pytest.mark.parametrize("scene, truth, expected", [
    # relations: the columns (or rows) of the two named objects decide; a shared column leaves it open
    ("red car middle left, blue bus bottom right", {"question": "side"}, "left"),
    ("red car middle left, blue bus bottom right", {"question": "vertical"}, "above"),
    ("red car bottom right, blue bus bottom right", {"question": "side"}, None),
    ("red car middle left, blue bus bottom right", {"question": "yesno", "asked": "right"}, "no"),
    ("red car middle left, blue bus bottom right", {"question": "which", "relation": "left"}, "car"),
    ("red car middle left, blue bus bottom right", {"question": "colour_of", "relation": "left"}, "red"),
    ("blue bus bottom right", {"question": "side"}, None),
])
def test_answer_from_scene_for_relations(scene, truth, expected):
    car, bus = {"kind": "car", "colour": "red"}, {"kind": "bus", "colour": "blue"}
    parsed = read_scene(scene + ". x: y")
    assert answer_from_scene(parsed, {"a": car, "b": bus, **truth}) == expected


@pytest.mark.parametrize("truth, expected", [
    ({"question": "count", "target_kind": "cell"}, "2"),
    ({"question": "count", "target_kind": "cyst"}, "0"),
    ({"question": "presence", "query": ["cell", "dark"]}, "yes"),
    ({"question": "presence", "query": ["nodule", "dark"]}, "no"),
    ({"question": "colour", "target": {"kind": "nodule"}}, "bright"),
    ({"question": "colour", "target": {"kind": "cell"}}, None),         # two cells: which one is open
    ({"question": "kind", "target": {"colour": "bright"}}, None),
    ({"question": "kind", "target": {"colour": "dark"}}, "cell"),
])
def test_answer_from_scene_for_vqa(truth, expected):
    parsed = read_scene("bright cell top left, bright nodule top centre, dark cell bottom right. x: y")
    assert answer_from_scene(parsed, truth) == expected


def test_other_samples_are_refused_with_the_record_named():
    s = generate("classify", "natural", {}, random.Random(0), 32)
    with pytest.raises(DataError, match="record 'c7'.*not a grounding, GUI, VQA or relation one.*Fix"):
        scene_reply(s, {"id": "c7"})
