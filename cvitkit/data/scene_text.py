"""A picture's objects as text: ``red car bottom left, blue tree top centre``, and that text read back.

Shared by the two scene-first reply forms (:mod:`cvitkit.data.scene_answers` for boxes and clicks,
:mod:`cvitkit.data.scene_questions` for questions about the scene). The scene is a caption with places,
which the tiny model writes well: every object once, ``<colour> <kind> <cell>`` (a button by its label),
in reading order (top row first, left to right), the cell being the third of the picture that holds the
object's centre (:func:`~cvitkit.data.worked_answers.box_cell`).
"""

from __future__ import annotations

import re

from cvitkit.data.worked_answers import COLUMNS, ROWS, box_cell

#: Between the scene and what follows it; between the scene's objects.
SCENE_END, OBJECT_SEP = ". ", ", "

#: The cells a scene names, in reading order (the order its objects are listed in).
CELLS = tuple(f"{r} {c}" for r in ROWS for c in COLUMNS)


def cell_of(obj: dict, size: int) -> str:
    """The cell of a drawn object (``truth`` dict with a pixel ``box``) in a ``size``-pixel picture."""
    return box_cell([v / size for v in obj["box"]])


def name_of(obj: dict) -> str:
    """How the scene names an object: a button by its label, anything else by colour and kind."""
    return obj["label"] if "label" in obj else f"{obj['colour']} {obj['kind']}"


def entry(obj: dict, size: int) -> str:
    """One object as the scene lists it: ``red car bottom left``."""
    return f"{name_of(obj)} {cell_of(obj, size)}"


def describe(objects: list[dict], size: int) -> str:
    """The scene of ``objects``: each one's entry, in reading order (a stable sort keeps the drawing order
    of two objects whose centres share a cell)."""
    ordered = sorted(objects, key=lambda o: CELLS.index(cell_of(o, size)))
    return OBJECT_SEP.join(entry(o, size) for o in ordered)


def read_scene(reply: str) -> list[tuple[str, str]]:
    """``(name, cell)`` per object of a scene-first reply's scene: ``[("red car", "bottom left"), ...]``.

    The scene ends at the last ``". "`` before the answer (a box ``[``, a point ``(`` or a word after
    ``:``, whose own points must not count); entries that do not end with a cell are skipped."""
    before_answer = re.split(r"[\[(:]", reply, maxsplit=1)[0]
    scene = before_answer.rpartition(SCENE_END.strip())[0]
    out = []
    for item in scene.split(OBJECT_SEP.strip()):
        words = item.split()
        if len(words) > 2 and " ".join(words[-2:]) in CELLS:
            out.append((" ".join(words[:-2]), " ".join(words[-2:])))
    return out
