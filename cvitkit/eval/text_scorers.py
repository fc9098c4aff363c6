"""Text-matching scorers: exact matches, VQA normalisation, substring rules, option letters.

Registered on import (see :mod:`cvitkit.eval.scorers` for the public API). Unless a docstring says
otherwise a reference entry is one string or a list of strings, any of which may match.
"""

from __future__ import annotations

import re
from typing import Any

from cvitkit.errors import DataError
from cvitkit.eval.registry import register, text_references
from cvitkit.eval.text_norm import normalize_vqa_answer

# --------------------------------------------------------------------------------------------------
# Exact matches
# --------------------------------------------------------------------------------------------------


@register("exact_match", references="string or list of strings (any may match)")
def exact_match(prediction: str, reference: Any) -> float:
    """Case-insensitive exact match: ``pred.strip().lower() == ref.strip().lower()`` for any reference.

    Used for CoIN VizWiz (upper-case comparison), VQAv2 and OCR-VQA, StrCVIT OCRVQA, and the UCIT/TriGap
    exact-match tasks of Prism/CRAM (upper-case comparison) and MCITlib (case-insensitive); comparing
    in lower or upper case is the same rule for these answers.
    """
    pred = prediction.strip().lower()
    return float(any(pred == ref.strip().lower() for ref in text_references(reference)))


@register("exact_match_nospace", references="string or list of strings (any may match)")
def exact_match_nospace(prediction: str, reference: Any) -> float:
    """Exact match after lower-casing the prediction and deleting its spaces and ``'.'`` characters.

    The reference is only lower-cased (and stripped of surrounding whitespace). Rule of the FinVis /
    StockQA scorer (``eval_finvis.py``) of MLLM-CL DCL "Fin" and StrCVIT "Fin", whose answers are option
    letters or yes/no: ``"B."`` and ``" Yes"`` count as ``"b"`` and ``"yes"``. Newlines inside the
    prediction are not deleted.
    """
    pred = prediction.strip().lower().replace(" ", "").replace(".", "")
    return float(any(pred == ref.strip().lower() for ref in text_references(reference)))


@register("gqa", references="string or list of strings (any may match)")
def gqa(prediction: str, reference: Any) -> float:
    """GQA accuracy: exact match after the LLaVA/CoIN GQA conversion of the prediction.

    The conversion for the official GQA script strips whitespace, drops trailing ``'.'`` characters and
    lower-cases the prediction; the official script then compares it with the (lower-case) gold answer.
    The restriction to *balanced* questions is a property of the test file (testdev-balanced), not of
    this scorer; the script's consistency/validity/plausibility/grounding side metrics are not computed.
    """
    pred = prediction.strip().rstrip(".").strip().lower()
    return float(any(pred == ref.strip().lower() for ref in text_references(reference)))


# --------------------------------------------------------------------------------------------------
# VQA (EvalAI normalisation)
# --------------------------------------------------------------------------------------------------


@register("vqa_exact", references="string (a list: any may match)")
def vqa_exact(prediction: str, reference: Any) -> float:
    """Exact match after EvalAI VQA answer normalisation of both sides.

    StrCVIT ``eval_vqav2.py``: the normalised prediction must equal the normalised single reference
    answer of the annotation file (not the 10-annotator soft accuracy). The normalisation
    (:func:`cvitkit.eval.text_norm.normalize_vqa_answer`) lower-cases, handles punctuation, maps number
    words to digits (``"two"`` → ``"2"``), drops articles and restores contractions. If a list is given,
    any reference may match (this is NOT soft accuracy; use ``vqa_soft`` for 10 annotator answers).
    """
    pred = normalize_vqa_answer(prediction)
    return float(any(pred == normalize_vqa_answer(ref) for ref in text_references(reference)))


@register("vqa_soft", references="list of the annotators' answers (10 for VQAv2/TextVQA/VizWiz)")
def vqa_soft(prediction: str, reference: Any, *, expected_refs: int | None = 10) -> float:
    """VQA soft accuracy over annotator answers, averaged over leave-one-out subsets (m4c evaluator).

    All answers and the prediction are normalised as in ``vqa_exact``. With ``n`` annotator answers, of
    which ``m`` equal the prediction, leaving out annotator ``j`` gives ``min(1, m_j / 3)`` where ``m_j``
    counts matches among the other ``n - 1``; the sample's value is the mean over the ``n`` choices of
    ``j``. With 10 answers: 0 matches → 0, 1 → 0.3, 2 → 0.6, 3 → 0.9, 4 or more → 1.0 (three matches
    do NOT give full credit, because leaving out one of them leaves only two). TextVQA in CoIN (m4c
    ``TextVQAAccuracyEvaluator``). ``expected_refs`` (default 10, as the m4c evaluator asserts) is
    checked per sample; ``None`` accepts any number of at least two answers.
    """
    answers = [normalize_vqa_answer(a) for a in text_references(reference)]
    if expected_refs is not None and len(answers) != expected_refs:
        raise DataError(f"vqa_soft expects {expected_refs} annotator answers, got {len(answers)}. "
                        "Pass expected_refs=None to accept another count.")
    if len(answers) < 2:
        raise DataError("vqa_soft needs at least two annotator answers (leave-one-out averaging).")
    pred = normalize_vqa_answer(prediction)
    matches = sum(a == pred for a in answers)
    if matches == 0:
        return 0.0
    return sum(min(1.0, (matches - (a == pred)) / 3.0) for a in answers) / len(answers)


# --------------------------------------------------------------------------------------------------
# Substring rules
# --------------------------------------------------------------------------------------------------


@register("substring", references="string or list of strings (any may match)")
def substring(prediction: str, reference: Any) -> float:
    """Correct iff a lower-cased reference (stripped) is contained in the lower-cased prediction.

    MLLM-CL Med / PathVQA (``eval_pvqa.py``). An empty reference matches nothing (documented choice:
    the empty string is a substring of everything).
    """
    pred = prediction.lower()
    return float(any(ref.strip() and ref.strip().lower() in pred for ref in text_references(reference)))


def _squash(text: str) -> str:
    return text.lower().replace(" ", "").replace("\n", "").replace(".", "")


@register("substring_nospace", references="string or list of strings (any may match)")
def substring_nospace(prediction: str, reference: Any) -> float:
    """Substring match after deleting spaces, newlines and ``'.'`` and lower-casing both sides.

    MLLM-CL ACL visual perception on CV-Bench (``eval_sat.py``). An empty reference matches nothing.
    """
    pred = _squash(prediction)
    return float(any(_squash(ref) and _squash(ref) in pred for ref in text_references(reference)))


_UNANSWERABLE = "unanswerable"


def _bounded_match(pred: str, ref: str) -> bool:
    gt = ref.strip().lower()
    if not gt:
        return False
    if " " in gt:  # multi-word answer: plain containment
        return gt in pred
    gt = gt.strip(".")
    if not gt:
        return False
    if " " not in pred:
        return gt in pred
    return re.search(rf"(?:^|[ .,]){re.escape(gt)}(?:$|[ .,])", pred) is not None


@register("bounded_substring", references="string or list of strings (any may match)")
def bounded_substring(prediction: str, reference: Any) -> float:
    """MLLM-CL RS/AD rule (``eval_ai2d.py``, also StrCVIT RS and AD), on lower-cased text.

    * A prediction containing "unanswerable" (any case) is wrong.
    * Multi-word reference (contains a space): correct iff it is a substring of the prediction.
    * Single-word reference: leading/trailing ``'.'`` are stripped from it; if the prediction has no
      space, plain containment; otherwise the reference must occur delimited on both sides by the
      start/end of the prediction, a space, ``'.'`` or ``','`` (``"no"`` matches ``"no, there is none"``
      but not ``"there is nothing"``).

    Choice: "strip '.' from the GT" is read as removing leading/trailing points only, so numbers such
    as ``"2.5"`` keep theirs.
    """
    pred = prediction.strip().lower()
    if _UNANSWERABLE in pred:
        return 0.0
    return float(any(_bounded_match(pred, ref) for ref in text_references(reference)))


@register("bidirectional_substring", references="string or list of strings (any may match)")
def bidirectional_substring(prediction: str, reference: Any) -> float:
    """ImageNet / Places365 rule (CoIN ImageNet, StrCVIT ``eval_ImagetNet.py``), case-insensitive.

    With ``G`` = upper-cased reference with every ``'.'`` removed and ``P`` = upper-cased prediction
    (stripped): correct iff ``G`` is a substring of ``P`` or ``P`` is a substring of ``G``.
    Choice: an empty prediction is never a match, although the empty string is technically a
    substring of every label; likewise an empty reference matches nothing. Note two properties of the
    release rule kept here: a fragment of the label (``"DOG"`` for ``"HOT DOG"``) counts as correct,
    and only the reference loses its points, so ``"st. bernard"`` misses the label ``"St. Bernard"``
    while ``"St Bernard"`` and ``"St Bernard."`` hit it.
    """
    pred = prediction.strip().upper()
    if not pred:
        return 0.0
    for ref in text_references(reference):
        gt = ref.upper().replace(".", "").strip()
        if gt and (gt in pred or pred in gt):
            return 1.0
    return 0.0


# --------------------------------------------------------------------------------------------------
# Option letters
# --------------------------------------------------------------------------------------------------

_EDGE_PUNCT = "\"'`.,:;!?()[]{}<>*"


def parse_option_letter(prediction: str, options: str | None = None) -> str | None:
    """The option letter of a reply under the ScienceQA rule of CoIN, or ``None``.

    1. the whole reply (stripped) is one letter → that letter;
    2. the reply starts with ``"X. "`` (a letter, a point and a space) → ``X``;
    3. otherwise the first word (split on whitespace, surrounding punctuation removed) that is a
       single letter → that letter, so ``"The answer is B."`` gives ``B``.
    Letters are returned upper-cased. With ``options`` (e.g. ``"ABCDE"``) only those letters are
    accepted at every step and other single letters are skipped (``"I think C"`` → ``C``); without it
    any letter counts, as in the release (so ``"I think C"`` → ``I`` and ``"a cat"`` → ``A``).
    """
    allowed = None if options is None else set(options.upper())

    def ok(char: str) -> bool:
        return len(char) == 1 and char.isalpha() and (allowed is None or char.upper() in allowed)

    text = prediction.strip()
    if ok(text):
        return text.upper()
    if len(text) >= 3 and ok(text[0]) and text[1:3] == ". ":
        return text[0].upper()
    for word in text.split():
        word = word.strip(_EDGE_PUNCT)
        if ok(word):
            return word.upper()
    return None


def _reference_letter(reference: Any) -> str:
    if isinstance(reference, int) and not isinstance(reference, bool):
        if not 0 <= reference < 26:
            raise DataError(f"option index {reference} out of range 0..25.")
        return chr(ord("A") + reference)
    if isinstance(reference, str):
        letter = reference.strip().strip(_EDGE_PUNCT).upper()
        if len(letter) == 1 and letter.isalpha():
            return letter
    raise DataError(f"option reference {reference!r} is not a letter ('B', '(B)') or a 0-based option index.")


@register("option_letter", references="letter ('B', '(B)', 'B.'), 0-based option index, or a list of those",
          parse_failure="no letter found in the reply (see parse_option_letter)")
def option_letter(prediction: str, reference: Any, *, options: str | None = None) -> float | None:
    """Multiple-choice accuracy with the ScienceQA letter parsing of CoIN (``parse_option_letter``).

    The parsed letter must equal the reference letter. A reply without a letter is a parse failure.
    ``options`` restricts the accepted letters (default: any letter, as in the release).
    """
    refs = reference if isinstance(reference, (list, tuple)) else [reference]
    if not refs:
        raise DataError("empty reference list for option_letter.")
    letters = {_reference_letter(r) for r in refs}
    parsed = parse_option_letter(prediction, options)
    if parsed is None:
        return None
    return float(parsed in letters)
