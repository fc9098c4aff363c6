"""Scene-first grounding replies: list every object with its cell, then look the named one up.

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

Two columns tell the steps apart (:func:`scene_agreement`): *reading right*, the scene places the
named object in its own cell (the vision step for the target); *answer follows its reading*, the box
lies in the cell the reply's own scene gives the named object (the lookup and the box). Like the worked
form it needs the objects a picture shows, so it applies to the kit's synthetic grounding data only
(``python -m cvitkit.probe --answer-form scene``).
"""

from __future__ import annotations

from collections.abc import Sequence

from cvitkit.data.option_answers import AGREEMENT_COLUMNS
from cvitkit.data.worked_answers import COLUMNS, ROWS, box_cell
from cvitkit.errors import DataError
from cvitkit.eval.text_norm import parse_box

#: Between the scene and the answer; between the scene's objects.
SCENE_END, OBJECT_SEP = ". ", ", "


def _cell(obj: dict, size: int) -> str:
    return box_cell([v / size for v in obj["box"]])


def _phrase(sample) -> str:
    return sample.truth["expr"].removeprefix("the ")


def scene_reply(sample, record: dict | None = None) -> str:
    """The scene-first reply to a grounding ``sample`` (drawn again with its truth: objects and phrase).

    ``record`` (the training record, for the error message only) follows the signature of
    :func:`~cvitkit.data.worked_answers.worked_reply`."""
    t = sample.truth
    if "expr" not in t or "objects" not in t:
        raise DataError(f"record {(record or {}).get('id', '?')!r}: its sample is not a grounding one (truth "
                        f"{sorted(t)}). Fix: use scene-first replies on grounding tasks only.")
    size = sample.image.size[0]
    order = {f"{r} {c}": i for i, (r, c) in enumerate((r, c) for r in ROWS for c in COLUMNS)}
    objects = sorted(t["objects"], key=lambda o: order[_cell(o, size)])
    scene = OBJECT_SEP.join(f"{o['colour']} {o['kind']} {_cell(o, size)}" for o in objects)
    return f"{scene}{SCENE_END}{_phrase(sample)} {box_cell(parse_box(sample.answer))} {sample.answer}"


def read_scene(reply: str) -> list[tuple[str, str]]:
    """``(name, cell)`` per object of a scene-first reply's scene: ``[("red car", "bottom left"), ...]``;
    entries that do not end with a cell are skipped."""
    scene = reply.partition("[")[0].rpartition(SCENE_END.strip())[0]
    cells = {f"{r} {c}" for r in ROWS for c in COLUMNS}
    out = []
    for entry in scene.split(OBJECT_SEP.strip()):
        words = entry.split()
        if len(words) > 2 and " ".join(words[-2:]) in cells:
            out.append((" ".join(words[:-2]), " ".join(words[-2:])))
    return out


def _named(scene: list[tuple[str, str]], phrase: str) -> str | None:
    """The cell the scene gives the one object ``phrase`` names (``car`` matches ``red car``), or ``None``."""
    words = phrase.split()
    cells = [cell for name, cell in scene if name.split()[-len(words):] == words]
    return cells[0] if len(cells) == 1 else None


def _reads(reply: str, sample) -> tuple[bool, bool]:
    """(reading right, answer follows the reading) for one scene-first reply."""
    scene, phrase = read_scene(reply), _phrase(sample)
    target = sample.truth["target"]
    truth_cell = _cell(target, sample.image.size[0])
    placed = (f"{target['colour']} {target['kind']}", truth_cell) in scene
    # the answer's box is the last one, as the scorer reads it (final_answer after "[")
    listed = _named(scene, phrase)
    box = parse_box(reply[reply.rfind("["):]) if "[" in reply else None
    return placed, listed is not None and box is not None and box_cell(box) == listed


def scene_agreement(replies: Sequence[str], samples: Sequence) -> dict:
    """Percent of scene-first replies whose scene places the named object in its own cell (*reading
    right*), and whose box lies in the cell their own scene gives the named object (*answer follows its
    reading*; a scene that names it never, or more than once, does not count)."""
    if len(replies) != len(samples) or not replies:
        raise ValueError(f"need equally many replies and samples (at least one), got {len(replies)} and "
                         f"{len(samples)}.")
    reads = [_reads(r, s) for r, s in zip(replies, samples)]
    n = len(reads)
    return dict(zip(AGREEMENT_COLUMNS, (100 * sum(a for a, _ in reads) / n, 100 * sum(b for _, b in reads) / n)))
