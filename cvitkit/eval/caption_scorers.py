"""Corpus-level caption scorers: ``cider`` and ``caption_avg`` (metrics in :mod:`cvitkit.eval.captions`).

Registered on import (see :mod:`cvitkit.eval.scorers` for the public API).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cvitkit.errors import DataError
from cvitkit.eval import captions
from cvitkit.eval.registry import CorpusOutput, register, text_references

# --------------------------------------------------------------------------------------------------
# Captions (corpus level)
# --------------------------------------------------------------------------------------------------


def _caption_corpus(predictions: Sequence[str], references: Sequence[Any]):
    cands = [captions.tokenize(p) for p in predictions]
    refs = []
    for i, ref in enumerate(references):
        try:
            texts = text_references(ref)
        except DataError as exc:
            raise DataError(f"sample {i}: {exc}") from exc
        refs.append([captions.tokenize(t) for t in texts])
    return cands, refs


@register("cider", references="list of reference captions (a single string = one caption)", corpus_level=True)
def cider(predictions: list[str], references: list[Any], *, sigma: float = 6.0) -> CorpusOutput:
    """CIDEr-D ×100 (StrCVIT TextCaps, ``eval_textcaps_proxy_cider.py``; pycocoevalcap definition).

    See :func:`cvitkit.eval.captions.cider_d` for the formula: n-grams 1–4, TF-IDF weights with document
    frequencies over the references of the scored corpus, candidate weights clipped by reference
    weights, Gaussian length penalty (``sigma`` = 6), ×10 per sample. Tokenisation is the kit's Python
    tokeniser (:func:`cvitkit.eval.captions.tokenize`), not the Java PTB tokeniser.

    ``score`` = 100 × corpus CIDEr (the usual table value, e.g. 85.3; it may exceed 100, at most 1000).
    ``per_sample[i]`` = sample CIDEr / 10, in [0, 1], so ``score = 1000 × mean(per_sample)``. Per-sample
    values depend on the whole corpus (document frequencies), and a corpus of one sample scores 0.
    """
    cands, refs = _caption_corpus(predictions, references)
    values = captions.cider_d(cands, refs, sigma=sigma)
    return CorpusOutput(score=100.0 * sum(values) / len(values), per_sample=[v / 10.0 for v in values])


CAPTION_COMPONENTS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr")


@register("caption_avg", references="list of reference captions (a single string = one caption)", corpus_level=True)
def caption_avg(predictions: list[str], references: list[Any]) -> CorpusOutput:
    """UCIT caption score: mean of BLEU-1..4, METEOR, ROUGE-L and CIDEr, each ×100.

    Used by Prism/CRAM and MCITlib for VizWiz-Caption and Flickr30k. Components (returned in
    ``components``, each ×100): corpus BLEU-1..4 with the COCO toolkit's "closest" reference length
    (:func:`cvitkit.eval.captions.bleu`); METEOR with **exact unigram matches only** — no stemming, no
    WordNet synonyms, no paraphrases — α = 0.9, β = 3, γ = 0.5, aggregated over the corpus
    (:func:`cvitkit.eval.captions.meteor`; typically lower than Java METEOR 1.5, and any METEOR difference
    moves the average by a seventh of it); ROUGE-L (β = 1.2, mean over samples); CIDEr-D.
    Tokenisation: :func:`cvitkit.eval.captions.tokenize`.

    ``per_sample[i]`` is the mean of the sample's sentence-level BLEU-1..4, METEOR, ROUGE-L and
    CIDEr/10 (all in [0, 1]). Because BLEU and METEOR are corpus-level and CIDEr is rescaled, the mean
    of ``per_sample`` ×100 is NOT ``score``; use it only to rank or inspect samples.
    """
    cands, refs = _caption_corpus(predictions, references)
    bleu_corpus, bleu_samples = captions.bleu(cands, refs)
    meteor_corpus, meteor_samples = captions.meteor(cands, refs)
    rouge_samples = [captions.rouge_l(c, r) for c, r in zip(cands, refs)]
    cider_samples = captions.cider_d(cands, refs)
    n = len(cands)
    values = [*bleu_corpus, meteor_corpus, sum(rouge_samples) / n, sum(cider_samples) / n]
    components = {name: 100.0 * v for name, v in zip(CAPTION_COMPONENTS, values)}
    per_sample = [
        (sum(bleu_samples[i]) + meteor_samples[i] + rouge_samples[i] + min(1.0, cider_samples[i] / 10.0)) / 7.0
        for i in range(n)
    ]
    return CorpusOutput(score=sum(components.values()) / len(components), per_sample=per_sample,
                        components=components)
