"""Scorers that parse structured answers: OCR hits, ANLS, numbers, lists, boxes and points.

Registered on import (see :mod:`cvitkit.eval.scorers` for the public API).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from cvitkit.errors import ConfigError, DataError
from cvitkit.eval.registry import get_scorer, register, text_references
from cvitkit.eval.text_norm import first_number, levenshtein, parse_box, parse_number, parse_point

# --------------------------------------------------------------------------------------------------
# OCR, ANLS, numbers, lists
# --------------------------------------------------------------------------------------------------


@register("ocrbench", references="string or list of strings (any may match)", per_sample_params=("math_expression",))
def ocrbench(prediction: str, reference: Any, *, math_expression: bool | Sequence[bool] = False) -> float:
    """OCRBench hit (MLLM-CL ACL OCR, ``eval_ocr.py``): any reference contained in the prediction.

    Normal items: reference and prediction are lower-cased, stripped and have newlines turned into
    spaces; the reference must be a substring of the prediction. Handwritten math expressions
    (HME100k; ``math_expression=True``, or a list with one flag per sample): all whitespace is removed
    from both and case is kept (LaTeX is case-sensitive). The benchmark's final score "hits / 10" over
    its 1000 items equals this scorer's percentage. An empty reference matches nothing.
    """
    if math_expression:
        pred = "".join(prediction.split())
        refs = ["".join(r.split()) for r in text_references(reference)]
    else:
        pred = prediction.lower().strip().replace("\n", " ")
        refs = [r.lower().strip().replace("\n", " ") for r in text_references(reference)]
    return float(any(r and r in pred for r in refs))


@register("anls", references="string or list of strings (max over references)")
def anls(prediction: str, reference: Any, *, threshold: float | None = 0.5) -> float:
    """Average normalised Levenshtein similarity (DocVQA / InfographicVQA).

    Per reference, on lower-cased stripped strings: ``NL = Lev(p, g) / max(|p|, |g|)`` (0 when both are
    empty) and ``s = 1 - NL``; with a threshold, ``s = 0`` when ``NL >= threshold``. The sample value is
    the maximum over references; the score is the mean ×100.

    * ``threshold=0.5`` (default): the official DocVQA ANLS.
    * ``threshold=None`` (or 1.0, which is equivalent because ``s`` is already 0 at ``NL = 1``): no
      threshold — the Prism/CRAM TriGap variant, which gives partial credit to any overlap.
    """
    if threshold is not None and not 0.0 < threshold <= 1.0:
        raise DataError(f"anls threshold must be in (0, 1] or None, got {threshold}.")
    pred = prediction.strip().lower()
    best = 0.0
    for ref in text_references(reference):
        gt = ref.strip().lower()
        longest = max(len(pred), len(gt))
        nl = levenshtein(pred, gt) / longest if longest else 0.0
        value = 0.0 if (threshold is not None and nl >= threshold) else 1.0 - nl
        best = max(best, value)
    return best


def _chart_number(text: str) -> float | None:
    body = text.strip()
    if body.endswith("%"):
        value = parse_number(body[:-1])
        return None if value is None else value / 100.0
    return parse_number(body)


@register("relaxed_accuracy", references="string or list of strings (any may match)")
def relaxed_accuracy(prediction: str, reference: Any, *, tolerance: float = 0.05) -> float:
    """ChartQA relaxed accuracy (StrCVIT ``eval_chartqa.py``; standard pix2struct definition).

    If prediction and reference both parse as numbers (whole string; ``"12%"`` → 0.12, thousands
    separators ``1,234`` allowed), correct iff ``|p - g| / |g| <= tolerance`` (5 % by default, inclusive,
    with 1e-12 slack for floating-point rounding); when ``g = 0`` the prediction must be exactly 0.
    Otherwise: case-insensitive exact match of the stripped strings.
    """
    pred_text = prediction.strip()
    pred_num = _chart_number(pred_text)
    for ref in text_references(reference):
        gt_num = _chart_number(ref)
        if pred_num is not None and gt_num is not None:
            ok = pred_num == 0.0 if gt_num == 0.0 else abs(pred_num - gt_num) / abs(gt_num) <= tolerance + 1e-12
        else:
            ok = pred_text.lower() == ref.strip().lower()
        if ok:
            return 1.0
    return 0.0


@register("numeric", references="number or numeric string, or a list of those (any may match)",
          parse_failure="no number in the prediction")
def numeric(prediction: str, reference: Any, *, tol: float = 1e-6) -> float | None:
    """Math answers: the FIRST number in the prediction must equal the reference within ``tol``.

    Offline stand-in for MathVista-style rule matching (the release extracts answers with an LLM
    first; that step needs an API and is not reproduced). Numbers may carry a sign, a fraction, an
    exponent and ``1,234``-style thousands separators; fractions like ``1/2`` are read as ``1``.
    A prediction without a number is a parse failure; a non-numeric reference raises ``DataError``.
    """
    refs = reference if isinstance(reference, (list, tuple)) else [reference]
    if not refs:
        raise DataError("empty reference list for numeric.")
    targets = []
    for ref in refs:
        value = float(ref) if isinstance(ref, (int, float)) and not isinstance(ref, bool) else (
            parse_number(ref) if isinstance(ref, str) else None)
        if value is None or math.isnan(value):
            raise DataError(f"numeric reference {ref!r} is not a number.")
        targets.append(value)
    pred = first_number(prediction)
    if pred is None:
        return None
    return float(any(abs(pred - t) <= tol for t in targets))


def _list_items(text: str) -> set[str]:
    return {item.strip().strip(".").strip().lower() for item in text.split(",")} - {""}


@register("mapqa_partial", references="comma-separated string or list of strings (the full GT list)")
def mapqa_partial(prediction: str, reference: Any) -> float:
    """MapQA "Which states ..." partial credit (MLLM-CL DCL Sci, ``eval_sci.py``).

    ``|GT ∩ P| / |GT|`` where ``P`` is the prediction split on commas and ``GT`` the reference list
    (a list of strings, or one comma-separated string); items are stripped, lower-cased and lose
    leading/trailing ``'.'``; both are treated as sets (duplicates counted once). Extra predicted items
    are not penalised. An empty GT list raises ``DataError``.
    """
    gt = set()
    for ref in text_references(reference):
        gt |= _list_items(ref)
    if not gt:
        raise DataError("mapqa_partial: empty ground-truth list.")
    return len(gt & _list_items(prediction)) / len(gt)


# --------------------------------------------------------------------------------------------------
# Boxes and points
# --------------------------------------------------------------------------------------------------

Box = tuple[float, float, float, float]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _reference_boxes(reference: Any) -> list[Box]:
    if hasattr(reference, "tolist") and not isinstance(reference, str):  # numpy arrays
        reference = reference.tolist()
    if isinstance(reference, (list, tuple)) and len(reference) == 4 and all(_is_number(v) for v in reference):
        return [tuple(float(v) for v in reference)]  # type: ignore[list-item]
    items = reference if isinstance(reference, (list, tuple)) else [reference]
    boxes = []
    for item in items:
        if isinstance(item, str):
            box = parse_box(item)
        elif isinstance(item, (list, tuple)) and len(item) == 4 and all(_is_number(v) for v in item):
            box = tuple(float(v) for v in item)
        else:
            box = None
        if box is None:
            raise DataError(f"reference box {item!r} is not '[x1, y1, x2, y2]' or a list of 4 numbers.")
        boxes.append(box)  # type: ignore[arg-type]
    if not boxes:
        raise DataError("empty reference box list.")
    return boxes


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two ``(x1, y1, x2, y2)`` boxes (continuous coordinates, no +1).

    Inverted or degenerate boxes have zero area; IoU is 0 when the union is empty.
    """
    inter_w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    inter_h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = inter_w * inter_h
    area_a = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1])
    area_b = max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


@register("iou", references="'[x1, y1, x2, y2]' string or 4 numbers (normalised); a list of boxes: any",
          parse_failure="no '[x1, y1, x2, y2]' (or '(x1, y1, x2, y2)') group in the prediction")
def iou(prediction: str, reference: Any, *, threshold: float = 0.5) -> float | None:
    """Referring-expression grounding (CoIN Grounding, StrCVIT ``eval_grounding.py``): IoU > threshold.

    The prediction's first ``[x1, y1, x2, y2]`` group is used wherever it stands in the text (a
    parenthesised four-number group is accepted when no bracketed one exists); without one the
    sample is a parse failure. Boxes are in coordinates normalised to the square-padded image; the
    releases multiply both boxes by max(width, height) first, which does not change IoU, so no image
    size is needed. Correct iff IoU is strictly greater than ``threshold``. (StrCVIT's parser instead
    deletes the brackets and drops the first and last character of the text; the robust parse here is
    a documented difference that only matters for malformed outputs.)
    """
    box = parse_box(prediction)
    refs = _reference_boxes(reference)
    if box is None:
        return None
    return float(max(box_iou(box, ref) for ref in refs) > threshold)


@register("point_in_box", references="'[x1, y1, x2, y2]' string or 4 numbers; a list of boxes: any",
          parse_failure="no '(x, y)' or '[x, y]' group in the prediction")
def point_in_box(prediction: str, reference: Any) -> float | None:
    """GUI click accuracy: the predicted point must lie inside the reference box (edges included).

    The first ``(x, y)`` or ``[x, y]`` group of the prediction is the click; it must be in the same
    coordinate frame as the box. A prediction without such a group (including a four-number box) is
    a parse failure. Offline proxy for GUI grounding; the MLLM-CL APP task itself is scored on EvalAI.
    """
    point = parse_point(prediction)
    refs = _reference_boxes(reference)
    if point is None:
        return None
    x, y = point
    return float(any(b[0] <= x <= b[2] and b[1] <= y <= b[3] for b in refs))


@register("final_answer", references="whatever the inner scorer accepts",
          parse_failure="nothing after the last separator, or the inner scorer's parse failure")
def final_answer(prediction: str, reference: Any, *, scorer: str = "exact_match", after: str = " ") -> float | None:
    """Score only the last step of a worked reply (``down up no``, ``3+4=7``) with the per-sample ``scorer``.

    Worked replies (:mod:`cvitkit.data.worked_answers`) write what they read from the picture before the
    answer; the answer is what follows the last ``after`` (``" "``: the last word; ``"="``: the result)
    or, for an opening bracket (``"["``: a box), starts at it. A reply without ``after`` is scored whole.
    A corpus-level inner scorer raises :class:`ConfigError`.
    """
    inner = get_scorer(scorer)
    if inner.corpus_level:
        raise ConfigError(f"final_answer scores one reply at a time; {scorer!r} is corpus-level. "
                          "Fix: pick a per-sample scorer (exact_match, numeric, option_letter, ...).")
    tail = final_part(prediction, after)
    if not tail:
        return None
    return inner.fn(tail, reference)


def final_part(prediction: str, after: str) -> str:
    """What follows the last ``after`` in ``prediction`` (from it, for an opening bracket), stripped; the
    whole reply when ``after`` is not in it."""
    parts = prediction.split() if after == " " else prediction.rsplit(after, 1)
    tail = parts[-1].strip() if parts else ""
    if after in ("[", "(") and len(parts) == 2:
        tail = after + tail   # the bracket belongs to the answer
    return tail
