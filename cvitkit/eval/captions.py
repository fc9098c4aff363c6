"""Caption metrics in pure Python: CIDEr-D, corpus BLEU-1..4, METEOR (exact matches only), ROUGE-L.

These follow the definitions used by the COCO caption evaluation toolkit (``pycocoevalcap``), which
the benchmarks in this kit report (StrCVIT TextCaps CIDEr; UCIT VizWiz-Caption and Flickr30k caption
average). Differences from that toolkit, all deliberate and documented:

* **Tokeniser.** The toolkit runs the Java PTB tokeniser. :func:`tokenize` instead lower-cases the
  text and keeps runs of letters/digits, where an apostrophe or hyphen *between* two such runs stays
  inside the token (``"don't"``, ``"black-and-white"``); every other character separates tokens, so
  punctuation disappears. The PTB tokeniser splits clitics (``"do" "n't"``) and keeps a few symbols;
  absolute values can therefore differ slightly (typically well under one point) from the toolkit's.
* **METEOR.** The toolkit calls METEOR 1.5 (Java) with stemming, WordNet synonyms and paraphrase
  tables and its tuned English parameters. :func:`meteor` aligns **exact** unigram matches only and
  uses the original METEOR parameters (α = 0.9, β = 3, γ = 0.5). Values are lower than METEOR 1.5's
  and must not be compared with numbers produced by the Java implementation.

All functions take already tokenised text (lists of tokens) so a corpus is tokenised once.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

Tokens = list[str]

_TOKEN = re.compile(r"[^\W_]+(?:['\-][^\W_]+)*")


def tokenize(text: str) -> Tokens:
    """Lower-case ``text`` and split it into word tokens, dropping punctuation (see module docstring)."""
    return _TOKEN.findall(text.lower())


def ngram_counts(tokens: Sequence[str], max_n: int = 4) -> Counter:
    """Counts of all n-grams of orders 1..``max_n`` (tuples of tokens)."""
    counts: Counter = Counter()
    for order in range(1, max_n + 1):
        for start in range(len(tokens) - order + 1):
            counts[tuple(tokens[start:start + order])] += 1
    return counts


# --------------------------------------------------------------------------------------------------
# CIDEr-D
# --------------------------------------------------------------------------------------------------

def cider_d(
    candidates: Sequence[Tokens],
    references: Sequence[Sequence[Tokens]],
    *,
    max_n: int = 4,
    sigma: float = 6.0,
) -> list[float]:
    """Per-sample CIDEr-D (toolkit scale: the corpus CIDEr is the mean of these values).

    For each n-gram order ``k`` in 1..``max_n`` a sentence becomes a TF-IDF vector
    ``g_k(s)[w] = count_s(w) * (log N - log max(1, df(w)))``, where ``N`` is the number of samples of the
    evaluated corpus and ``df(w)`` the number of samples whose *reference set* contains ``w``. Against
    one reference ``r`` the order-``k`` similarity is

        sim_k(c, r) = exp(-(l_c - l_r)^2 / (2 sigma^2)) * sum_w min(g_k(c)[w], g_k(r)[w]) * g_k(r)[w]
                      / (||g_k(c)|| * ||g_k(r)||)

    (the ``min`` clips candidate weights by reference weights; the quotient is left as the bare sum
    when one norm is zero, which makes it 0). The sample's score is
    ``10 * mean_k (1/|R|) sum_{r in R} sim_k(c, r)``, so it lies in [0, 10].

    As in the toolkit, the lengths ``l`` in the Gaussian penalty are counted in **bigrams** (number of
    tokens − 1, at least 0), which equals the word-length difference for any non-empty sentences.
    Because of the document frequencies, a sample's value depends on the whole corpus; a corpus of
    one sample always scores 0 (``log N = 0`` and every reference n-gram has ``df = 1``).
    """
    if len(candidates) != len(references):
        raise ValueError(f"cider_d: {len(candidates)} candidates but {len(references)} reference sets.")
    n_samples = len(candidates)
    if n_samples == 0:
        return []
    ref_counts = [[ngram_counts(ref, max_n) for ref in refs] for refs in references]
    doc_freq: Counter = Counter()
    for counts_per_ref in ref_counts:
        doc_freq.update(set().union(*counts_per_ref) if counts_per_ref else set())
    log_n = math.log(float(n_samples))

    def weights(counts: Counter) -> tuple[list[dict], list[float], int]:
        vec: list[dict] = [{} for _ in range(max_n)]
        sq = [0.0] * max_n
        bigrams = 0
        for gram, tf in counts.items():
            order = len(gram) - 1
            value = tf * (log_n - math.log(max(1.0, doc_freq[gram])))
            vec[order][gram] = value
            sq[order] += value * value
            if order == 1:
                bigrams += tf
        return vec, [math.sqrt(s) for s in sq], bigrams

    penalty_scale = 2.0 * sigma * sigma
    scores = []
    for cand, counts_per_ref in zip(candidates, ref_counts):
        vec_c, norm_c, len_c = weights(ngram_counts(cand, max_n))
        total = [0.0] * max_n
        for counts in counts_per_ref:
            vec_r, norm_r, len_r = weights(counts)
            penalty = math.exp(-((len_c - len_r) ** 2) / penalty_scale)
            for order in range(max_n):
                acc = sum(min(value, vec_r[order].get(gram, 0.0)) * vec_r[order].get(gram, 0.0)
                          for gram, value in vec_c[order].items())
                if norm_c[order] != 0.0 and norm_r[order] != 0.0:
                    acc /= norm_c[order] * norm_r[order]
                total[order] += acc * penalty
        n_refs = max(1, len(counts_per_ref))
        scores.append(10.0 * (sum(total) / max_n) / n_refs)
    return scores


# --------------------------------------------------------------------------------------------------
# BLEU (corpus level, "closest" reference length)
# --------------------------------------------------------------------------------------------------

_BLEU_TINY = 1e-15   # added to matched counts
_BLEU_SMALL = 1e-9   # added to candidate counts


def _bleu_from_counts(correct: Sequence[float], guess: Sequence[float], test_len: float,
                      ref_len: float) -> list[float]:
    """Cumulative BLEU-1..n from clipped matches, candidate n-gram counts and the two lengths."""
    out = []
    product = 1.0
    for order, (c, g) in enumerate(zip(correct, guess), start=1):
        product *= (c + _BLEU_TINY) / (g + _BLEU_SMALL)
        out.append(product ** (1.0 / order))
    ratio = (test_len + _BLEU_TINY) / (ref_len + _BLEU_SMALL)
    if ratio < 1.0:
        brevity = math.exp(1.0 - 1.0 / ratio)
        out = [v * brevity for v in out]
    return out


def bleu(candidates: Sequence[Tokens], references: Sequence[Sequence[Tokens]], max_n: int = 4
         ) -> tuple[list[float], list[list[float]]]:
    """Corpus BLEU-1..``max_n`` (in [0, 1]) and per-sample sentence BLEU, as in the COCO caption toolkit.

    For each sample: candidate length ``c``, effective reference length ``r`` = the reference length
    closest to ``c`` (the shorter one on ties), ``guess_k`` = number of candidate k-grams and
    ``match_k`` = sum over candidate k-grams of min(count in candidate, max count in any reference).
    Corpus BLEU-n sums these over the corpus and returns

        BLEU-n = BP * (prod_{k=1..n} (match_k + 1e-15) / (guess_k + 1e-9)) ^ (1/n),
        BP = exp(1 - r/c) if c < r else 1,

    i.e. the geometric mean of the modified precisions of orders 1..n (cumulative, not the
    individual n-gram precision). The tiny constants are the toolkit's smoothing. The per-sample
    values use the same formula on one sample's statistics; corpus BLEU is not their mean.
    Returns ``(corpus, per_sample)`` with ``per_sample[i][n-1]`` = sentence BLEU-n of sample ``i``.
    """
    if len(candidates) != len(references):
        raise ValueError(f"bleu: {len(candidates)} candidates but {len(references)} reference sets.")
    total_correct = [0.0] * max_n
    total_guess = [0.0] * max_n
    total_test = total_ref = 0
    per_sample = []
    for cand, refs in zip(candidates, references):
        max_ref: Counter = Counter()
        for ref in refs:
            for gram, count in ngram_counts(ref, max_n).items():
                if count > max_ref[gram]:
                    max_ref[gram] = count
        cand_counts = ngram_counts(cand, max_n)
        correct = [0.0] * max_n
        for gram, count in cand_counts.items():
            correct[len(gram) - 1] += min(count, max_ref.get(gram, 0))
        guess = [float(max(len(cand) - k, 0)) for k in range(max_n)]
        test_len = len(cand)
        ref_len = min((abs(len(ref) - test_len), len(ref)) for ref in refs)[1] if refs else 0
        per_sample.append(_bleu_from_counts(correct, guess, test_len, ref_len))
        for k in range(max_n):
            total_correct[k] += correct[k]
            total_guess[k] += guess[k]
        total_test += test_len
        total_ref += ref_len
    corpus = _bleu_from_counts(total_correct, total_guess, total_test, total_ref) if candidates else [0.0] * max_n
    return corpus, per_sample


# --------------------------------------------------------------------------------------------------
# ROUGE-L
# --------------------------------------------------------------------------------------------------

def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token lists."""
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for token_a in a:
        current = [0]
        for j, token_b in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if token_a == token_b else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l(candidate: Tokens, references: Sequence[Tokens], beta: float = 1.2) -> float:
    """Sentence ROUGE-L (in [0, 1]) as in the COCO caption toolkit.

    With ``P_r = LCS(c, r)/|c|`` and ``R_r = LCS(c, r)/|r|``, take ``P = max_r P_r`` and ``R = max_r R_r``
    **separately** over the references, then ``F = (1 + beta^2) P R / (R + beta^2 P)`` (0 if P or R is 0);
    beta = 1.2. The corpus value is the mean over samples.
    """
    if not candidate or not references:
        return 0.0
    precision = recall = 0.0
    for ref in references:
        if not ref:
            continue
        common = lcs_length(candidate, ref)
        precision = max(precision, common / len(candidate))
        recall = max(recall, common / len(ref))
    if precision == 0.0 or recall == 0.0:
        return 0.0
    return (1 + beta ** 2) * precision * recall / (recall + beta ** 2 * precision)


# --------------------------------------------------------------------------------------------------
# METEOR (exact unigram matches)
# --------------------------------------------------------------------------------------------------

def align_exact(candidate: Sequence[str], reference: Sequence[str]) -> tuple[int, int]:
    """Exact-match unigram alignment: ``(matches, chunks)``.

    Every token type is matched min(count in candidate, count in reference) times (the maximum).
    Among the possible alignments, a greedy left-to-right pass tries to keep the number of chunks
    low: a candidate token continues the current chunk when the next reference position holds the
    same token; otherwise it takes the free reference position that starts the longest run of
    common tokens (earliest on ties). A chunk is a maximal run of candidate tokens aligned to
    consecutive reference positions in the same order. With repeated words METEOR's beam search can
    occasionally find an alignment with fewer chunks than this greedy pass.
    """
    positions: dict[str, list[int]] = {}
    for j, token in enumerate(reference):
        positions.setdefault(token, []).append(j)
    used = [False] * len(reference)
    aligned: list[int | None] = []
    previous: int | None = None
    for i, token in enumerate(candidate):
        free = [j for j in positions.get(token, ()) if not used[j]]
        if not free:
            aligned.append(None)
            previous = None
            continue
        if previous is not None and previous + 1 in free:
            choice = previous + 1
        else:
            def run_length(j: int) -> int:
                length = 0
                while (i + length < len(candidate) and j + length < len(reference) and not used[j + length]
                       and candidate[i + length] == reference[j + length]):
                    length += 1
                return length
            choice = max(free, key=lambda j: (run_length(j), -j))
        used[choice] = True
        aligned.append(choice)
        previous = choice
    matches = sum(1 for j in aligned if j is not None)
    chunks = 0
    last: int | None = None
    for j in aligned:
        if j is not None and (last is None or j != last + 1):
            chunks += 1
        last = j
    return matches, chunks


def _meteor_from_stats(matches: float, chunks: float, cand_len: float, ref_len: float,
                       alpha: float, beta: float, gamma: float) -> float:
    if matches == 0 or cand_len == 0 or ref_len == 0:
        return 0.0
    precision = matches / cand_len
    recall = matches / ref_len
    f_mean = precision * recall / (alpha * precision + (1 - alpha) * recall)
    penalty = gamma * (chunks / matches) ** beta
    return f_mean * (1.0 - penalty)


def meteor(candidates: Sequence[Tokens], references: Sequence[Sequence[Tokens]], *, alpha: float = 0.9,
           beta: float = 3.0, gamma: float = 0.5) -> tuple[float, list[float]]:
    """METEOR with exact unigram matching only (no stemming, synonyms or paraphrases).

    Per candidate/reference pair with ``m`` matches and ``ch`` chunks (:func:`align_exact`):
    ``P = m/|c|``, ``R = m/|r|``, ``Fmean = P R / (alpha P + (1 - alpha) R)`` (= 10PR/(R+9P) for
    alpha = 0.9), ``Pen = gamma (ch/m)^beta`` and ``score = Fmean (1 - Pen)``; 0 without matches.
    A sample is scored against each reference and the best one is kept. The corpus value is
    computed, as METEOR does, from the statistics (m, ch, |c|, |r|) of those best pairs summed over the
    corpus, so it is not the mean of the sentence scores. Returns ``(corpus, per_sample)`` in [0, 1].
    """
    if len(candidates) != len(references):
        raise ValueError(f"meteor: {len(candidates)} candidates but {len(references)} reference sets.")
    totals = [0.0, 0.0, 0.0, 0.0]  # matches, chunks, candidate length, reference length
    per_sample = []
    for cand, refs in zip(candidates, references):
        best_score, best_stats = -1.0, (0.0, 0.0, float(len(cand)), float(len(refs[0]) if refs else 0))
        for ref in refs:
            matches, chunks = align_exact(cand, ref)
            stats = (float(matches), float(chunks), float(len(cand)), float(len(ref)))
            value = _meteor_from_stats(*stats, alpha, beta, gamma)
            if value > best_score:
                best_score, best_stats = value, stats
        per_sample.append(max(best_score, 0.0))
        totals = [t + s for t, s in zip(totals, best_stats)]
    corpus = _meteor_from_stats(*totals, alpha, beta, gamma)
    return corpus, per_sample
