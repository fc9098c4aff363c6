"""Scene-first replies to questions about a scene: list the objects, copy the ones asked about, answer.

DCL AD, Med, CoIN GQA and VQAv2 ask one word about drawn objects: "Is the car to the left or to the
right of the bus?", "What colour is the nodule?", "How many kites are there?". The tiny model scored
no better on them than a model shown a blank picture: it learned each question type's usual answer and
not to find the asked objects among the patches. A scene-first reply splits the work into steps that
can each be trained and checked:

``blue bus middle left, red car bottom right. red car bottom right, blue bus middle left: right``

1. the scene (:mod:`cvitkit.data.scene_text`): every object with its colour, kind and cell, in reading
   order, a caption with places;
2. the objects the question is about, copied from the scene (``none`` if there are none), in the order
   the question names them, the subject first: a lookup from the question's words into text already
   written, the step an induction head does;
3. after ``: ``, the answer, read off the copied entries (compare two cells, give a colour or a kind,
   count entries, say whether one is there). Only this word is scored, by the task's own scorer.

=============  =======================================  ==========================================
question       copied                                   answer
=============  =======================================  ==========================================
colour         the object of the asked kind             its colour
kind           the object of the asked colour           its kind
count          every object of the asked kind           how many were copied
presence       the objects of the asked colour and kind ``yes`` if any was copied
side/vertical  the two named objects                    where the first is, by its cell's column/row
yesno          the two named objects                    ``yes`` if the first is on the asked side
which/colour   the named object, then the one on the    the second one's kind / colour
               asked side of it
=============  =======================================  ==========================================

*Reading right* (:func:`question_reads`): the scene lists exactly the picture's objects, each with its
colour, kind and cell. *Answer follows its reading*: the answer is what the reply's own scene gives for
the question, right or wrong (a scene that leaves the question open, two objects of the asked kind or a
shared column, does not count). Cells are thirds of the picture, so a pair separated by less than a
third can share one: the answer still follows the picture (the generator's truth), not the cells.
"""

from __future__ import annotations

from cvitkit.data.scene_text import OBJECT_SEP, SCENE_END, cell_of, describe, entry, name_of, read_scene
from cvitkit.data.worked_answers import COLUMNS, ROWS

#: Families whose samples ask a one-word question about the scene, and the separator before the answer.
QUESTION_FAMILIES = {"vqa": ":", "relation": ":"}

#: What the copy step writes when the question is about no object of the scene (a ``no`` to presence).
NONE = "none"

#: The axis each relation word compares along.
_AXES = {"left": "x", "right": "x", "above": "y", "below": "y"}


def _matches(obj_colour: str, obj_kind: str, truth: dict) -> bool:
    """Whether an object (by colour and kind) is one the question of ``truth`` asks about (colour, kind,
    count, presence questions)."""
    q = truth["question"]
    if q == "count":
        return obj_kind == truth["target_kind"]
    if q == "colour":
        return obj_kind == truth["target"]["kind"]
    if q == "kind":
        return obj_colour == truth["target"]["colour"]
    kind, colour = truth["query"]
    return (obj_kind, obj_colour) == (kind, colour)


def _named(truth: dict) -> list[dict]:
    """The objects a relation question names, subject first (``which``/``colour_of``: the named one, then
    the one on the asked side of it, whose kind or colour is the answer)."""
    if truth["question"] in ("which", "colour_of"):
        return [truth["b"], truth["a"]]
    return [truth["a"], truth["b"]]


def question_reply(sample) -> str:
    """The scene-first reply to a VQA or relation ``sample`` (drawn again with its truth)."""
    t, size = sample.truth, sample.image.size[0]
    if "a" in t:
        about = _named(t)
    else:
        about = [o for o in t["objects"] if _matches(o["colour"], o["kind"], t)]
    copied = OBJECT_SEP.join(entry(o, size) for o in about) or NONE
    return f"{describe(t['objects'], size)}{SCENE_END}{copied}{QUESTION_FAMILIES['vqa']} {sample.answer}"


def _place(cell: str) -> dict:
    row, column = cell.split()
    return {"x": COLUMNS.index(column), "y": ROWS.index(row)}


def _one(scene: list[tuple[str, str, str]], kind: str) -> tuple[str, str, str] | None:
    found = [e for e in scene if e[1] == kind]
    return found[0] if len(found) == 1 else None


def _side(first: str, second: str, axis: str) -> str | None:
    """Where the object in cell ``first`` is relative to the one in ``second`` along ``axis`` (None: same)."""
    d = _place(first)[axis] - _place(second)[axis]
    if d == 0:
        return None
    return {("x", True): "left", ("x", False): "right", ("y", True): "above", ("y", False): "below"}[(axis, d < 0)]


def answer_from_scene(scene: list[tuple[str, str]], truth: dict) -> str | None:
    """The answer ``scene`` (``(name, cell)`` pairs, as :func:`~cvitkit.data.scene_text.read_scene` reads
    them) gives to the question of ``truth``, or ``None`` where the scene leaves it open."""
    parts = [(*name.split(), cell) for name, cell in scene if len(name.split()) == 2]   # colour, kind, cell
    q = truth["question"]
    if "a" not in truth:
        hits = [(c, k) for c, k, _ in parts if _matches(c, k, truth)]
        if q == "count":
            return str(len(hits))
        if q == "presence":
            return "yes" if hits else "no"
        if len(hits) != 1:
            return None
        return hits[0][0] if q == "colour" else hits[0][1]
    b = _one(parts, truth["b"]["kind"])
    if b is None:
        return None
    if q in ("which", "colour_of"):
        axis = _AXES[truth["relation"]]
        others = [e for e in parts if e is not b and _side(e[2], b[2], axis) == truth["relation"]]
        if len(others) != 1:
            return None
        return others[0][1] if q == "which" else others[0][0]
    a = _one(parts, truth["a"]["kind"])
    if a is None:
        return None
    rel = _side(a[2], b[2], "y" if q == "vertical" else "x")
    if rel is None or q != "yesno":
        return rel
    return "yes" if rel == truth["asked"] else "no"


def question_reads(reply: str, sample) -> tuple[bool, bool]:
    """(reading right, answer follows its reading) for one scene-first reply to a VQA or relation sample."""
    t, size = sample.truth, sample.image.size[0]
    scene = read_scene(reply)
    truth_scene = [(name_of(o), cell_of(o, size)) for o in t["objects"]]
    placed = sorted(scene) == sorted(truth_scene)
    if QUESTION_FAMILIES["vqa"] not in reply:
        return placed, False
    answer = reply.rpartition(QUESTION_FAMILIES["vqa"])[2].strip()
    given = answer_from_scene(scene, t)
    return placed, given is not None and answer == given


__all__ = ["NONE", "QUESTION_FAMILIES", "answer_from_scene", "question_reads", "question_reply"]
