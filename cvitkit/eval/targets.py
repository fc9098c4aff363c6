"""Which object a grounding box or a GUI click lands on: the named one, another one, or none.

CoIN Grounding scores a box by its IoU with the named object's box, ACL GUI a click by whether it lies in
the named button. Both pictures hold two to four objects (buttons), so a model that boxes *an* object
of each picture, at random, scores :math:`\\frac{1}{n}\\sum_i 1/|O_i|` without reading the phrase at all;
a score above the best constant answer does not tell the two apart. This read-out does, from the
synthetic generator's truth (every object of each test picture, its kind, colour and box; the named one).

For test question :math:`i` with objects :math:`O_i`, named object :math:`t_i` and the reply's answer
:math:`a_i` (the box or point after a worked or scene-first reply's last separator), the object it lands
on is

.. math:: \\ell_i = \\text{the } o \\in O_i \\text{ with } \\mathrm{IoU}(a_i, o) > 0.5 \\text{ (a box) or }
          a_i \\in o \\text{ (a point, edges included)},

or none. The objects of one picture do not overlap, so at most one object qualifies: a box with IoU
above 0.5 with each of two disjoint boxes would have to cover more than its own area. The columns, in
percent of the :math:`n` test questions:

- *on an object*: :math:`\\ell_i` exists;
- *on the named object*: :math:`\\ell_i = t_i` (the task's own score, parse failures counted as misses);
- *on another of its colour* / *of its kind*: :math:`\\ell_i \\neq t_i` and :math:`\\ell_i` shares the
  named object's colour / kind (a model that reads only the colour word lands on the first kind of
  miss; GUI buttons are all of one kind, so their second column equals every miss);
- *a random object*: :math:`100 \\cdot \\frac{1}{n} \\sum_i 1/|O_i|`, the expected *on the named object*
  of a model that lands on one object of each picture at random. A model that has found the objects
  but not the one named scores about *on an object* times this share.
"""

from __future__ import annotations

from collections.abc import Sequence

from cvitkit.eval.parsed_scorers import box_iou
from cvitkit.eval.text_norm import parse_box, parse_point

#: Task families whose answer is a place on the picture of one of its objects.
TARGET_FAMILIES = ("ground", "gui")

#: Columns of :func:`target_hits`, in percent of the test questions.
TARGET_COLUMNS = ("on an object", "on the named object", "on another of its colour", "on another of its kind",
                  "a random object")

#: IoU a box needs with an object's box to land on it (the grounding scorer's threshold).
IOU_THRESHOLD = 0.5


def landed_on(answer: str, objects: Sequence[dict], side: int) -> int | None:
    """Index in ``objects`` of the object ``answer`` lands on, or ``None``.

    ``answer`` holds a normalised box ``[x1, y1, x2, y2]`` or, failing that, a point ``(x, y)``;
    ``objects`` are the generator's, each with a ``box`` in pixels of a picture ``side`` pixels wide. (A GUI
    reply that writes a box is read as a box here, where the click scorer counts it a parse failure.)"""
    box = parse_box(answer)
    point = None if box is not None else parse_point(answer)
    for index, obj in enumerate(objects):
        x1, y1, x2, y2 = (v / side for v in obj["box"])
        if box is not None and box_iou(box, (x1, y1, x2, y2)) > IOU_THRESHOLD:
            return index
        if point is not None and x1 <= point[0] <= x2 and y1 <= point[1] <= y2:
            return index
    return None


def target_hits(answers: Sequence[str], samples: Sequence) -> dict:
    """The columns of :data:`TARGET_COLUMNS` for ``answers`` (each reply's final box or point) to the
    synthetic test ``samples`` (each with ``truth["objects"]``, ``truth["target"]`` and its ``image``)."""
    if len(answers) != len(samples) or not answers:
        raise ValueError(f"need as many answers as samples (at least one), got {len(answers)} and {len(samples)}.")
    counts = dict.fromkeys(TARGET_COLUMNS, 0.0)
    for answer, sample in zip(answers, samples):
        objects, target = sample.truth["objects"], sample.truth["target"]
        index = landed_on(answer, objects, sample.image.size[0])
        counts["a random object"] += 1 / len(objects)
        if index is None:
            continue
        hit = objects[index]
        counts["on an object"] += 1
        if hit["box"] == target["box"]:
            counts["on the named object"] += 1
            continue
        counts["on another of its colour"] += hit["colour"] == target["colour"]
        counts["on another of its kind"] += hit["kind"] == target["kind"]
    return {k: 100 * v / len(answers) for k, v in counts.items()}
