"""Named scorers for every benchmark task of the kit (CoIN, MLLM-CL, StrCVIT, UCIT, TriGap).

Use them by name::

    from cvitkit.eval.scorers import score
    result = score("vqa_soft", predictions, references)   # ScoreResult(score=..., parse_failures=...)

:func:`available_scorers` lists the names and :func:`describe_scorers` the accepted reference formats,
parse-failure rules and parameters. Each scorer's docstring states its rule and the benchmark release
it reproduces (``protocols.md`` in the shared reference folder). Unless a docstring says otherwise, a
reference entry is one string or a list of strings and a sample is correct when it matches **any** of
them; numeric references are converted with ``str()``; ``None`` predictions count as empty outputs.
Per-sample values are in [0, 1] and ``score`` = 100 × their mean, except for the corpus-level
``cider`` and ``caption_avg`` (see their docstrings).

=========================  ========================================================================
name                       rule (source)
=========================  ========================================================================
exact_match                strip + case-insensitive equality (CoIN VizWiz/VQAv2/OCR-VQA, UCIT, TriGap)
exact_match_nospace        prediction lower-cased without spaces and '.' == GT (MLLM-CL/StrCVIT Fin)
gqa                        prediction without trailing '.', lower-cased == GT (GQA conversion + script)
vqa_exact                  EvalAI-normalised exact match, single reference (StrCVIT VQAv2)
vqa_soft                   leave-one-out VQA soft accuracy over 10 answers (CoIN TextVQA, m4c)
substring                  GT in prediction, lower-cased (MLLM-CL Med)
substring_nospace          GT in prediction without spaces/newlines/'.' (MLLM-CL VP, CV-Bench)
bounded_substring          word-bounded GT containment, "unanswerable" wrong (MLLM-CL/StrCVIT RS, AD)
bidirectional_substring    GT in prediction or prediction in GT, upper-cased (ImageNet, Places365)
option_letter              ScienceQA letter parsing (CoIN ScienceQA)
ocrbench                   any GT contained; math expressions without whitespace (MLLM-CL OCR)
anls                       normalised Levenshtein similarity, threshold 0.5 or none (DocVQA; TriGap)
relaxed_accuracy           5 % relative tolerance for numbers, else exact (StrCVIT ChartQA)
numeric                    first number in the prediction == GT within 1e-6 (math, offline)
mapqa_partial              |GT list ∩ predicted list| / |GT list| (MLLM-CL Sci, MapQA)
iou                        parsed box IoU > 0.5 (CoIN / StrCVIT Grounding)
point_in_box               parsed click point inside the GT box (GUI grounding proxy)
final_answer               the last step of a worked reply, scored by another scorer (probe only)
cider                      CIDEr-D ×100, Python tokeniser (StrCVIT TextCaps)
caption_avg                mean of BLEU-1..4, METEOR (exact), ROUGE-L, CIDEr ×100 (UCIT captions)
=========================  ========================================================================

The scorers live in :mod:`~cvitkit.eval.text_scorers`, :mod:`~cvitkit.eval.parsed_scorers` and
:mod:`~cvitkit.eval.caption_scorers`; importing this module registers all of them.
"""

from __future__ import annotations

from cvitkit.eval import caption_scorers, parsed_scorers, text_scorers  # noqa: F401  (register scorers)
from cvitkit.eval.parsed_scorers import box_iou
from cvitkit.eval.registry import (
    SCORERS,
    CorpusOutput,
    Scorer,
    ScoreResult,
    available_scorers,
    describe_scorers,
    get_scorer,
    register,
    score,
)
from cvitkit.eval.text_norm import normalize_vqa_answer
from cvitkit.eval.text_scorers import parse_option_letter

__all__ = [
    "SCORERS", "CorpusOutput", "ScoreResult", "Scorer", "available_scorers", "box_iou", "describe_scorers",
    "get_scorer", "normalize_vqa_answer", "parse_option_letter", "register", "score",
]
