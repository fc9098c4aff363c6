"""Scene-first replies for grounding and GUI clicks: list every object with its cell, then look the named one up.

A worked grounding reply (:mod:`cvitkit.data.worked_answers`) names the cell of the target before its
box: ``bottom left [0.10, 0.65, 0.30, 0.90]``. The tiny model learned from it to box *an* object of the
picture, not the one the phrase names: finding "the red car" among the patches is a lookup from words
into the picture, and that lookup is what it lacks. A *scene-first* reply moves the lookup into text:

``blue tree top centre, red car bottom left. red car bottom left [0.10, 0.65, 0.30, 0.90]``

- the scene: every object, ``<colour> <kind> <cell>``, in reading order (top row first, left to right),
  a caption with places, which the tiny model writes well;
- the phrase of the question without its article (``red car``, or ``car`` when the question says
  ``the car``), then its cell copied from the scene: the cell is the token after the phrase's earlier
  copy, the lookup an induction head does;
- the box, in that cell.

ACL GUI (click the button a label names, ``(0.73, 0.55)``) has the same two steps and the same failure
(clicks land on *a* button, not the named one), and its scene-first reply has the same shape, with each
button named by its label: ``home top left, send middle right. send middle right (0.73, 0.55)``.

Two columns tell the steps apart (:func:`scene_agreement`): *reading right*, the scene places the
named object in its own cell (the vision step for the target); *answer follows its reading*, the box
lies in the cell the reply's own scene gives the named object (the lookup and the box). Like the worked
form it needs the objects a picture shows, so it applies to the kit's synthetic data only (``python -m
cvitkit.probe --answer-form scene``). One-word questions about the scene (VQA, spatial relations) have
a scene-first reply of the same kind, :mod:`cvitkit.data.scene_questions`; this module dispatches to
it, and the scene's text itself lives in :mod:`cvitkit.data.scene_text`.
"""

from __future__ import annotations

from collections.abc import Sequence

from cvitkit.data.option_answers import AGREEMENT_COLUMNS
from cvitkit.data.scene_questions import QUESTION_FAMILIES, question_reads, question_reply
from cvitkit.data.scene_text import SCENE_END, cell_of, describe, name_of, read_scene
from cvitkit.data.worked_answers import box_cell
from cvitkit.errors import DataError
from cvitkit.eval.text_norm import parse_box, parse_point

#: Families with a scene-first reply, and what opens each one's answer: a box's ``[``, a point's ``(``,
#: or the ``:`` before a word (questions about the scene, :mod:`cvitkit.data.scene_questions`).
SCENE_FAMILIES = {"ground": "[", "gui": "(", **QUESTION_FAMILIES}

__all__ = ["SCENE_FAMILIES", "read_scene", "scene_agreement", "scene_reply"]


def _phrase(sample) -> str:
    """What the question names: the referring expression without its article, or the button's label."""
    t = sample.truth
    return t["expr"].removeprefix("the ") if "expr" in t else t["target"]["label"]


def _points(truth: dict) -> bool:
    """Whether a sample asks for a box (a phrase names its object) or a click (a label names its button)."""
    return "objects" in truth and ("expr" in truth or "label" in truth.get("target", {}))


def scene_reply(sample, record: dict | None = None) -> str:
    """The scene-first reply to a grounding, GUI, VQA or relation ``sample`` (drawn again with its truth:
    the objects, and the target and phrase or the question's type and terms).

    ``record`` (the training record, for the error message only) follows the signature of
    :func:`~cvitkit.data.worked_answers.worked_reply`."""
    t = sample.truth
    if "question" in t and "objects" in t:
        return question_reply(sample)
    if not _points(t):
        raise DataError(f"record {(record or {}).get('id', '?')!r}: its sample is not a grounding, GUI, VQA or "
                        f"relation one (truth {sorted(t)}). Fix: use scene-first replies on those tasks only.")
    size = sample.image.size[0]
    return f"{describe(t['objects'], size)}{SCENE_END}{_phrase(sample)} {cell_of(t['target'], size)} {sample.answer}"


def _named(scene: list[tuple[str, str]], phrase: str) -> str | None:
    """The cell the scene gives the one object ``phrase`` names (``car`` matches ``red car``), or ``None``."""
    words = phrase.split()
    cells = [cell for name, cell in scene if name.split()[-len(words):] == words]
    return cells[0] if len(cells) == 1 else None


def _answer_cell(reply: str, bracket: str) -> str | None:
    """The cell of the reply's answer: its last box (``[``) or point (``(``), as ``final_answer`` reads it."""
    if bracket not in reply:
        return None
    tail = reply[reply.rfind(bracket):]
    if bracket == "[":
        box = parse_box(tail)
        return None if box is None else box_cell(box)
    point = parse_point(tail)
    return None if point is None else box_cell((*point, *point))


def _reads(reply: str, sample) -> tuple[bool, bool]:
    """(reading right, answer follows the reading) for one scene-first reply."""
    scene, phrase = read_scene(reply), _phrase(sample)
    target = sample.truth["target"]
    placed = (name_of(target), cell_of(target, sample.image.size[0])) in scene
    listed = _named(scene, phrase)
    answered = _answer_cell(reply, "[" if "expr" in sample.truth else "(")
    return placed, listed is not None and answered == listed


def scene_agreement(replies: Sequence[str], samples: Sequence) -> dict:
    """Percent of scene-first replies whose scene places the named object in its own cell (*reading
    right*), and whose box lies in the cell their own scene gives the named object (*answer follows its
    reading*; a scene that names it never, or more than once, does not count)."""
    if len(replies) != len(samples) or not replies:
        raise ValueError(f"need equally many replies and samples (at least one), got {len(replies)} and "
                         f"{len(samples)}.")
    reads = [question_reads(r, s) if "question" in s.truth else _reads(r, s) for r, s in zip(replies, samples)]
    n = len(reads)
    return dict(zip(AGREEMENT_COLUMNS, (100 * sum(a for a, _ in reads) / n, 100 * sum(b for _, b in reads) / n)))
