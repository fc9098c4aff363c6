"""Scorers on hand-written cases: rules, edge cases, parse failures and hand-computed caption metrics."""

from __future__ import annotations

import math

import pytest

from cvitkit.errors import ConfigError, DataError
from cvitkit.eval import captions
from cvitkit.eval.registry import register
from cvitkit.eval.scorers import (
    available_scorers,
    box_iou,
    describe_scorers,
    get_scorer,
    normalize_vqa_answer,
    parse_option_letter,
    score,
)

FIXED_NAMES = {
    "exact_match", "exact_match_nospace", "vqa_exact", "vqa_soft", "substring", "substring_nospace",
    "bounded_substring", "bidirectional_substring", "option_letter", "ocrbench", "iou", "point_in_box", "anls",
    "relaxed_accuracy", "numeric", "mapqa_partial", "cider", "caption_avg", "gqa",
}


def per_sample(name, preds, refs, **params):
    return score(name, preds, refs, **params).per_sample


# ------------------------------------------------------------------------------------------------
# Registry and ScoreResult
# ------------------------------------------------------------------------------------------------

def test_registry_has_the_fixed_names_and_descriptions():
    assert FIXED_NAMES <= set(available_scorers())
    info = describe_scorers()
    for name in FIXED_NAMES:
        assert info[name]["summary"] and info[name]["references"]
    assert info["anls"]["params"] == {"threshold": 0.5}
    assert get_scorer("iou").defaults == {"threshold": 0.5}


def test_unknown_scorer_lists_valid_names():
    with pytest.raises(ConfigError) as err:
        score("exact_mach", ["a"], ["a"])
    assert "exact_match" in str(err.value) and "Did you mean" in str(err.value) and "vqa_soft" in str(err.value)


def test_duplicate_registration_refused():
    with pytest.raises(ConfigError, match="already registered"):
        register("exact_match", references="x")(lambda p, r: 1.0)


def test_length_mismatch_and_bad_inputs():
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        score("exact_match", ["a", "b"], ["a"])
    with pytest.raises(ValueError, match="nothing to score"):
        score("exact_match", [], [])
    with pytest.raises(DataError, match="single string"):
        score("exact_match", "abc", ["a", "b", "c"])
    with pytest.raises(DataError, match="prediction 0"):
        score("exact_match", [3], ["3"])
    with pytest.raises(ConfigError, match="Valid parameters: threshold"):
        score("anls", ["a"], ["a"], tolerance=0.1)
    with pytest.raises(DataError, match="sample 1"):
        score("exact_match", ["a", "b"], ["a", []])


def test_score_result_fields():
    result = score("option_letter", ["B", "no idea", "C"], ["B", "A", "A"])
    assert result.name == "option_letter" and result.n == 3
    assert result.per_sample == [1.0, 0.0, 0.0]
    assert result.parse_failures == 1 and result.failed_indices == [1]
    assert result.score == pytest.approx(100 / 3)
    assert result.params == {"options": None}
    data = result.to_dict()
    assert "per_sample" not in data and data["parse_failures"] == 1
    assert "parse failures=1" in str(result)


def test_none_prediction_is_an_empty_output():
    assert per_sample("exact_match", [None], [""]) == [1.0]
    assert per_sample("substring", [None], ["cat"]) == [0.0]


# ------------------------------------------------------------------------------------------------
# Exact matches
# ------------------------------------------------------------------------------------------------

def test_exact_match():
    preds = ["Cat ", "dog", "", "hound!", "7"]
    refs = ["cat", ["Dog", "hound"], "x", ["Dog", "hound"], 7]
    assert per_sample("exact_match", preds, refs) == [1, 1, 0, 0, 1]


def test_exact_match_nospace():
    preds = ["B.", " Yes.", "y e s", "no", "A B", "yes\n"]
    refs = ["B", "yes", "Yes", "yes", "ab", "yes"]
    assert per_sample("exact_match_nospace", preds, refs) == [1, 1, 1, 0, 1, 1]


def test_gqa():
    assert per_sample("gqa", ["Yes.", "left", "on the left"], ["yes", "Left", "left"]) == [1, 1, 0]


# ------------------------------------------------------------------------------------------------
# VQA
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "normalised"), [
    ("The Two Dogs!", "2 dogs"),
    ("ten", "10"),
    ("none", "0"),
    ("hello-world", "hello world"),
    ("well - done", "well done"),
    ("dog's bowl", "dog 's bowl"),
    ("3.5", "3.5"),
    ("end.", "end"),
    ("dont", "don't"),
    ("Yes, it is.", "yes it is"),
    ("an apple\n", "apple"),
    ("couldnt've", "couldn't've"),
])
def test_vqa_normalisation(raw, normalised):
    assert normalize_vqa_answer(raw) == normalised


def test_vqa_exact_number_words_articles_contractions():
    preds = ["Two", "the dog", "dont", "yes.", "two dogs", "Three", ""]
    refs = ["2", "dog", "don't", "yes", "2", ["3", "three"], "no"]
    assert per_sample("vqa_exact", preds, refs) == [1, 1, 1, 1, 0, 1, 0]


@pytest.mark.parametrize(("matches", "expected"), [(0, 0.0), (1, 0.3), (2, 0.6), (3, 0.9), (4, 1.0), (10, 1.0)])
def test_vqa_soft_leave_one_out(matches, expected):
    # leaving out annotator j: min(1, (matches among the other 9)/3), averaged over the 10 choices of j.
    # 2 matches: 2 subsets with 1 match (1/3) and 8 with 2 matches (2/3) -> (2/3 + 16/3)/10 = 0.6.
    # 3 matches: 3 subsets with 2 matches (2/3) and 7 with 3 (1) -> (2 + 7)/10 = 0.9.
    refs = ["2"] * matches + ["blue"] * (10 - matches)
    assert per_sample("vqa_soft", ["two"], [refs]) == [pytest.approx(expected)]


def test_vqa_soft_reference_count():
    with pytest.raises(DataError, match="expects 10"):
        score("vqa_soft", ["a"], [["a"] * 9])
    # 3 answers a, a, b: leave out an 'a' -> 1 match (1/3) twice, leave out 'b' -> 2 matches (2/3) -> 4/9
    assert per_sample("vqa_soft", ["a"], [["a", "a", "b"]], expected_refs=None) == [pytest.approx(4 / 9)]
    with pytest.raises(DataError, match="at least two"):
        score("vqa_soft", ["a"], [["a"]], expected_refs=None)


# ------------------------------------------------------------------------------------------------
# Substring rules
# ------------------------------------------------------------------------------------------------

def test_substring():
    preds = ["It is a Cat.", "dog", "", "anything"]
    refs = ["cat", "cat", "cat", " "]
    assert per_sample("substring", preds, refs) == [1, 0, 0, 0]


def test_substring_nospace():
    preds = ["The answer is 3.\n", "Two Hundred", "4", "(B) Left"]
    refs = ["3", "two hundred", "3", "b"]
    assert per_sample("substring_nospace", preds, refs) == [1, 1, 0, 1]


def test_bounded_substring():
    cases = [
        ("no", "no", 1),                       # no space in prediction: plain containment
        ("No, there is none.", "no", 1),       # bounded by start and ','
        ("There is nothing", "no", 0),         # 'no' only inside 'nothing'
        ("nothing", "no", 1),                  # single word prediction: plain containment (release quirk)
        ("Unanswerable", "unanswerable", 0),   # "unanswerable" is always wrong
        ("unanswerable, yes", "yes", 0),
        ("It is a rural area.", "rural area", 1),  # multi-word GT: substring
        ("yes, it is", "yes.", 1),             # '.' stripped from a single-word GT
        ("the count is 12.", "12", 1),         # bounded by ' ' and '.'
        ("the count is 125", "12", 0),
        ("", "yes", 0),
    ]
    preds, refs, expected = zip(*cases)
    assert per_sample("bounded_substring", list(preds), list(refs)) == list(expected)


def test_bidirectional_substring():
    cases = [
        ("goldfish", "Goldfish", 1),
        ("A goldfish in a bowl.", "goldfish", 1),
        ("gold", "goldfish", 1),               # prediction inside the label
        ("", "goldfish", 0),                   # empty prediction never matches (documented choice)
        ("   ", "goldfish", 0),
        ("cat", "dog", 0),
        ("St Bernard", "st. bernard", 1),      # '.' removed from the GT only
        ("st. bernard", "St. Bernard", 0),     # ... so a prediction keeping the point misses (release rule)
    ]
    preds, refs, expected = zip(*cases)
    assert per_sample("bidirectional_substring", list(preds), list(refs)) == list(expected)


# ------------------------------------------------------------------------------------------------
# Option letters
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("reply", "letter"), [
    ("B", "B"),
    ("b", "B"),
    ("C. The dog", "C"),
    ("The answer is B.", "B"),
    ("(A) cat", "A"),
    ("Answer: D", "D"),
    ("none of these", None),
    ("", None),
])
def test_parse_option_letter(reply, letter):
    assert parse_option_letter(reply) == letter


def test_option_letter_options_restrict_letters():
    assert parse_option_letter("I think C") == "I"
    assert parse_option_letter("I think C", options="ABCD") == "C"
    assert parse_option_letter("I think so", options="ABCD") is None


def test_option_letter_scorer():
    preds = ["The answer is B.", "A", "C. x", "no letter here", "b"]
    result = score("option_letter", preds, ["B", "(A)", 2, "A", ["A", "B"]])
    assert result.per_sample == [1, 1, 1, 0, 1]
    assert result.parse_failures == 1 and result.failed_indices == [3]
    with pytest.raises(DataError, match="not a letter"):
        score("option_letter", ["A"], ["cat"])


# ------------------------------------------------------------------------------------------------
# OCR, ANLS, numbers, lists
# ------------------------------------------------------------------------------------------------

def test_ocrbench():
    preds = ["The sign says STOP here", "Exit", "nothing"]
    refs = [["stop"], ["EXIT", "way out"], "xyz"]
    assert per_sample("ocrbench", preds, refs) == [1, 1, 0]


def test_ocrbench_math_expression():
    pred, ref = r"\frac{1}{2} + x", r"\frac {1}{2}+x"
    assert per_sample("ocrbench", [pred], [ref]) == [0.0]
    assert per_sample("ocrbench", [pred], [ref], math_expression=True) == [1.0]
    assert per_sample("ocrbench", [pred, "X"], [ref, "x"], math_expression=[True, True]) == [1.0, 0.0]
    assert per_sample("ocrbench", [pred, "X"], [ref, "x"], math_expression=[True, False]) == [1.0, 1.0]
    with pytest.raises(DataError, match="2 values for 1 samples"):
        score("ocrbench", [pred], [ref], math_expression=[True, False])


def test_anls_with_and_without_threshold():
    preds = ["hello", "abc", "abcd", "abcde", "Hello ", "", "abcd"]
    refs = ["hallo", "xyz", "abxy", "abxyz", "hello", "", ["zzzz", "abcx"]]
    # NL: 1/5=0.2, 1, 2/4=0.5, 3/5=0.6, 0, 0 (both empty), min(1, 0.25)=0.25
    official = per_sample("anls", preds, refs)
    assert official == pytest.approx([0.8, 0.0, 0.0, 0.0, 1.0, 1.0, 0.75])   # NL >= 0.5 -> 0
    prism = per_sample("anls", preds, refs, threshold=None)
    assert prism == pytest.approx([0.8, 0.0, 0.5, 0.4, 1.0, 1.0, 0.75])
    assert per_sample("anls", preds, refs, threshold=1.0) == pytest.approx(prism)
    with pytest.raises(DataError, match="threshold"):
        score("anls", ["a"], ["a"], threshold=0.0)


def test_relaxed_accuracy():
    preds = ["104.9", "105.1", "95.1", "94.9", "0", "0.0", "0.01", "Yes", "12%", "1,020", "about 100"]
    refs = ["100", "100", "100", "100", "0", "0", "0", "yes", "0.12", "1000", "100"]
    assert per_sample("relaxed_accuracy", preds, refs) == [1, 0, 1, 0, 1, 1, 0, 1, 1, 1, 0]
    assert per_sample("relaxed_accuracy", ["105.1", "1.05"], ["100", "1"], tolerance=0.06) == [1, 1]
    assert per_sample("relaxed_accuracy", ["1.05"], ["1"]) == [1]   # exactly 5 %, despite float rounding


def test_numeric():
    result = score("numeric", ["The answer is 42.", "x = -3.5", "1,000 apples", "no idea", "3.0000001", "3.01", "2e3"],
                   [42, "-3.5", 1000, 7, 3, 3, "2000"])
    assert result.per_sample == [1, 1, 1, 0, 1, 0, 1]
    assert result.parse_failures == 1 and result.failed_indices == [3]
    with pytest.raises(DataError, match="not a number"):
        score("numeric", ["1"], ["one"])


def test_mapqa_partial():
    preds = ["Texas, Ohio, Utah", "texas.", "", "Ohio, Ohio, Maine, Iowa, Texas"]
    refs = ["Texas, Ohio, Maine, Iowa", ["Texas", "Ohio"], "Texas", "Texas, Ohio, Maine, Iowa"]
    assert per_sample("mapqa_partial", preds, refs) == pytest.approx([0.5, 0.5, 0.0, 1.0])
    with pytest.raises(DataError, match="empty ground-truth"):
        score("mapqa_partial", ["a"], [" , "])


# ------------------------------------------------------------------------------------------------
# Boxes and points
# ------------------------------------------------------------------------------------------------

def test_box_iou():
    assert box_iou((0, 0, 1, 1), (0, 0, 1, 1)) == 1.0
    assert box_iou((0, 0, 1, 1), (0, 0, 0.5, 1)) == pytest.approx(0.5)
    assert box_iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0.0
    assert box_iou((0, 0, 2, 2), (1, 1, 3, 3)) == pytest.approx(1 / 7)
    assert box_iou((1, 1, 0, 0), (0, 0, 1, 1)) == 0.0  # inverted box has no area
    # scaling both boxes by max(w, h) (square padding) leaves IoU unchanged
    assert box_iou((0, 0, 640, 640), (0, 0, 320, 640)) == pytest.approx(0.5)


def test_iou_scorer():
    preds = [
        "The box is [0.1, 0.1, 0.5, 0.5].",     # text around the box
        "[0.10,0.12,0.52,0.49]",
        "[0, 0, 1, 1]",                          # IoU exactly 0.5 vs [0, 0, 0.5, 1] -> not > 0.5
        "no box here",                           # parse failure
        "(0.1, 0.1, 0.5, 0.5)",                  # parenthesised fallback
        "",                                      # parse failure
    ]
    refs = [[0.1, 0.1, 0.5, 0.5], "[0.1, 0.1, 0.5, 0.5]", [0, 0, 0.5, 1], [0, 0, 1, 1], "[0.1, 0.1, 0.5, 0.5]",
            [0, 0, 1, 1]]
    result = score("iou", preds, refs)
    assert result.per_sample == [1, 1, 0, 0, 1, 0]
    assert result.parse_failures == 2 and result.failed_indices == [3, 5]
    assert score("iou", [preds[2]], [refs[2]], threshold=0.4).per_sample == [1]
    assert per_sample("iou", ["[0, 0, 1, 1]"], [["[5, 5, 6, 6]", [0, 0, 1, 1]]]) == [1]  # any of several boxes
    with pytest.raises(DataError, match="reference box"):
        score("iou", ["[0, 0, 1, 1]"], ["somewhere"])


def test_point_in_box():
    preds = ["Click (0.5, 0.5)", "(1.0, 0.3)", "[1.01, 0.3]", "[0.1, 0.2, 0.3, 0.4]", "tap here", "[0, 0]"]
    refs = [[0, 0, 1, 1]] * 5 + ["[0, 0, 1, 1]"]
    result = score("point_in_box", preds, refs)
    assert result.per_sample == [1, 1, 0, 0, 0, 1]       # edges count as inside
    assert result.failed_indices == [3, 4]               # a box is not a point


# ------------------------------------------------------------------------------------------------
# Captions
# ------------------------------------------------------------------------------------------------

def test_tokenize():
    assert captions.tokenize("A black-and-white dog, running!") == ["a", "black-and-white", "dog", "running"]
    assert captions.tokenize("don't  stop...") == ["don't", "stop"]


def test_cider_hand_computed():
    # Corpus of N = 2 images, log N = ln 2. References: "a b c" and "a d"; df(a) = 2, every other
    # n-gram df = 1, so weights are 0 for "a" and ln 2 (= L) for the rest.
    # Sample 1, candidate "a b" vs "a b c":
    #   order 1: c = {a: 0, b: L}, r = {a: 0, b: L, c: L}: sum min*r = L^2, |c| = L, |r| = sqrt(2) L -> 1/sqrt(2)
    #   order 2: c = {ab: L}, r = {ab: L, bc: L} -> 1/sqrt(2);  orders 3, 4: 0
    #   length penalty: 1 vs 2 bigrams -> exp(-1/72);  CIDEr = 10 * (2/sqrt(2))/4 * exp(-1/72)
    # Sample 2, candidate "a d" == reference: orders 1 and 2 give 1, orders 3, 4 give 0 -> 10 * 2/4 = 5
    s1 = 10 * (2 / math.sqrt(2)) / 4 * math.exp(-1 / 72)
    result = score("cider", ["a b", "A D."], [["a b c"], "a d"])
    assert result.per_sample == pytest.approx([s1 / 10, 0.5])
    assert result.score == pytest.approx(100 * (s1 + 5) / 2)        # = 1000 * mean(per_sample)
    assert result.score == pytest.approx(1000 * sum(result.per_sample) / 2)


def test_cider_identical_and_disjoint():
    refs = [["a man rides a red bicycle down the street"], ["two cats sleep on a sofa"],
            ["a plate of pasta with tomato sauce"], ["children play football in the park"]]
    identical = score("cider", [r[0] for r in refs], refs)
    assert identical.score > 500                                      # 1000 = perfect on every order
    disjoint = score("cider", ["zebra", "quantum leap", "xylophone music", "purple"], refs)
    assert disjoint.score == 0.0 and disjoint.per_sample == [0.0] * 4
    single = score("cider", ["a man rides a bicycle"], [["a man rides a bicycle"]])
    assert single.score == 0.0                                        # one-image corpus: idf is 0


def test_bleu_hand_computed():
    t = captions.tokenize
    # "the cat sat on the mat" vs "the cat is on the mat": precisions 5/6, 3/5, 1/4, 0/3; equal lengths
    corpus, samples = captions.bleu([t("the cat sat on the mat")], [[t("the cat is on the mat")]])
    assert corpus[:3] == pytest.approx([5 / 6, math.sqrt(5 / 6 * 3 / 5), 0.5])
    assert corpus[3] < 1e-3 and samples[0] == pytest.approx(corpus)
    # corpus level with a brevity penalty: add "dog" vs "a dog runs" (c = 1, r = 3, unigram 1/1, no bigram)
    # totals: unigrams 6/7, bigrams 3/5, c = 7, r = 9 -> BP = exp(1 - 9/7)
    corpus, _ = captions.bleu([t("the cat sat on the mat"), t("dog")],
                              [[t("the cat is on the mat")], [t("a dog runs")]])
    bp = math.exp(1 - 9 / 7)
    assert corpus[0] == pytest.approx(6 / 7 * bp)
    assert corpus[1] == pytest.approx(math.sqrt(6 / 7 * 3 / 5) * bp)
    # closest reference length (shorter one on ties): c = 2, references of length 3 and 2 -> r = 2, BP = 1
    corpus, _ = captions.bleu([t("a dog")], [[t("a dog runs"), t("the dog")]])
    assert corpus[0] == pytest.approx(1.0)


def test_meteor_and_rouge_hand_computed():
    t = captions.tokenize
    cand, ref = t("the cat sat on the mat"), t("the cat is on the mat")
    # 5 exact matches in 2 chunks ("the cat" | "on the mat"); P = R = 5/6
    assert captions.align_exact(cand, ref) == (5, 2)
    penalty = 0.5 * (2 / 5) ** 3
    corpus, samples = captions.meteor([cand], [[ref]])
    assert samples[0] == pytest.approx(5 / 6 * (1 - penalty)) and corpus == pytest.approx(samples[0])
    # LCS = 5 -> P = R = 5/6 -> F = 5/6
    assert captions.rouge_l(cand, [ref]) == pytest.approx(5 / 6)
    assert captions.rouge_l([], [ref]) == 0.0
    assert captions.meteor([[]], [[ref]])[0] == 0.0


def test_caption_avg_components():
    preds = ["the cat sat on the mat", "a dog"]
    refs = [["the cat is on the mat"], ["a dog runs", "the dog"]]
    result = score("caption_avg", preds, refs)
    assert list(result.components) == ["BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr"]
    assert result.score == pytest.approx(sum(result.components.values()) / 7)
    assert result.components["BLEU-1"] == pytest.approx(100 * 7 / 8)   # unigrams 5/6 + 2/2, c = r = 8
    assert result.components["CIDEr"] == pytest.approx(score("cider", preds, refs).score)
    assert all(0.0 <= v <= 1.0 for v in result.per_sample) and result.parse_failures == 0
