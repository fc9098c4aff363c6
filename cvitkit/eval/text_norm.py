"""Text helpers shared by the scorers: VQA answer normalisation, number and box parsing, edit distance.

Everything here is pure Python (``re`` only) so that scoring never needs torch or a download.

VQA answer normalisation
------------------------
:func:`normalize_vqa_answer` implements the answer processing of the EvalAI VQA evaluation as it is
used by the m4c TextVQA evaluator (and by LLaVA/CoIN/StrCVIT through it). In order:

1. lower-case; delete ``,`` and ``?``; put a space before every ``'s`` (``"dog's"`` → ``"dog 's"``);
   replace newlines and tabs by spaces; strip;
2. punctuation: each symbol of :data:`VQA_PUNCTUATION` is deleted when the text has that symbol next
   to a space or has a digit-comma-digit group anywhere, otherwise it is replaced by a space; then
   every ``.`` that is not directly followed by a digit is deleted (so ``"3.5"`` keeps its point);
3. words (split on whitespace): number words ``none``/``zero`` … ``ten`` become digits, the articles
   ``a``/``an``/``the`` are dropped, and contractions written without an apostrophe are restored
   (``"dont"`` → ``"don't"``, see :data:`VQA_CONTRACTIONS`); words are joined by single spaces.

Effective-behaviour notes (the reference evaluators differ from their apparent intent; we reproduce
what they actually do): the period rule deletes a ``.`` whenever the next character is not a digit
(the reference's look-*behind* for a preceding digit is mis-written and never applies); contraction
entries for "I'm"/"I've"/"I'd've" are never reached there because their keys are capitalised while
the text is lower-cased, so they are left out here too.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

# --------------------------------------------------------------------------------------------------
# VQA normalisation
# --------------------------------------------------------------------------------------------------

#: Symbols handled by the punctuation step (``.``, ``:``, ``'``, ``%`` and friends are NOT in the set).
VQA_PUNCTUATION: tuple[str, ...] = (
    ";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!",
)

#: Number words mapped to digits.
VQA_NUMBER_WORDS: dict[str, str] = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}

VQA_ARTICLES: frozenset[str] = frozenset({"a", "an", "the"})

# Canonical contractions. Forms whose apostrophe-free spelling is an ordinary English word
# ("we'll" → "well", "it's" → "its", "she'll" → "shell", "let's", "I'll" ...) are deliberately absent,
# as in the reference table.
_CANONICAL_CONTRACTIONS: tuple[str, ...] = (
    # negations
    "ain't", "aren't", "can't", "couldn't", "couldn't've", "didn't", "doesn't", "don't", "hadn't",
    "hadn't've", "hasn't", "haven't", "isn't", "mightn't", "mightn't've", "mustn't", "needn't",
    "oughtn't", "shan't", "shouldn't", "shouldn't've", "wasn't", "weren't", "won't", "wouldn't",
    "wouldn't've",
    # modal + have
    "could've", "might've", "must've", "should've", "would've", "not've",
    # pronoun / wh-word forms
    "he'd", "he'd've", "he's", "she'd've", "it'd", "it'd've", "it'll", "we'd've", "we've",
    "they'd", "they'd've", "they'll", "they're", "they've", "you'd", "you'd've", "you'll", "you're",
    "you've", "y'all", "y'all'll", "y'all'd've",
    "how'd", "how'll", "how's", "what'll", "what're", "what's", "what've", "when's", "where'd",
    "where's", "where've", "who'd", "who'd've", "who'll", "who's", "who've", "why'll", "why're", "why's",
    "that's", "there'd", "there'd've", "there're", "there's",
    "somebody'd've", "somebody'll", "somebody's", "someone'd", "someone'd've", "someone'll", "someone's",
    "something'd", "something'd've", "something'll",
    # others
    "ma'am", "o'clock", "'twas", "'ow's'at",
)


def _contraction_table(canonical: Sequence[str]) -> dict[str, str]:
    """Map every spelling with exactly ONE apostrophe left out to the canonical form."""
    table: dict[str, str] = {}
    for form in canonical:
        for pos, char in enumerate(form):
            if char == "'":
                table[form[:pos] + form[pos + 1:]] = form
    return table


#: Apostrophe-less spellings → canonical contraction (e.g. ``"dont"`` → ``"don't"``).
VQA_CONTRACTIONS: dict[str, str] = _contraction_table(_CANONICAL_CONTRACTIONS)

_DIGIT_COMMA_DIGIT = re.compile(r"\d,\d")
_PERIOD_NOT_BEFORE_DIGIT = re.compile(r"\.(?!\d)")


def _vqa_punctuation(text: str) -> str:
    joined_digits = _DIGIT_COMMA_DIGIT.search(text) is not None
    out = text
    for symbol in VQA_PUNCTUATION:
        # the test looks at the text as it was before any symbol was processed
        if joined_digits or (symbol + " ") in text or (" " + symbol) in text:
            out = out.replace(symbol, "")
        else:
            out = out.replace(symbol, " ")
    return _PERIOD_NOT_BEFORE_DIGIT.sub("", out)


def _vqa_words(text: str) -> str:
    words = []
    for word in text.lower().split():
        word = VQA_NUMBER_WORDS.get(word, word)
        if word in VQA_ARTICLES:
            continue
        words.append(VQA_CONTRACTIONS.get(word, word))
    return " ".join(words)


def normalize_vqa_answer(text: str) -> str:
    """EvalAI/m4c VQA answer normalisation (see the module docstring for the exact steps)."""
    text = text.lower().replace(",", "").replace("?", "").replace("'s", " 's").strip()
    text = text.replace("\n", " ").replace("\t", " ").strip()
    return _vqa_words(_vqa_punctuation(text))


# --------------------------------------------------------------------------------------------------
# Numbers, points and boxes
# --------------------------------------------------------------------------------------------------

#: A decimal number: optional sign, digits with optional thousands groups ``1,234``, optional
#: fraction (a trailing point as in ``"12."`` is allowed), optional exponent; or a bare fraction ``.5``.
NUMBER_PATTERN = r"[-+]?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
#: A coordinate inside a box or point: no thousands separators (the comma separates coordinates).
COORD_PATTERN = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_NUMBER = re.compile(rf"(?<![\w.])(?:{NUMBER_PATTERN})")
_NUM = rf"\s*({COORD_PATTERN})\s*"
_BOX_BRACKETS = re.compile(rf"\[{_NUM},{_NUM},{_NUM},{_NUM}\]")
_BOX_PARENS = re.compile(rf"\({_NUM},{_NUM},{_NUM},{_NUM}\)")
_POINT = re.compile(rf"[\[(]{_NUM},{_NUM}[\])]")


def _to_float(token: str) -> float:
    return float(token.replace(",", ""))


def parse_number(text: str) -> float | None:
    """The whole of ``text`` (stripped, an optional trailing ``%`` ignored) as a number, else ``None``.

    Thousands separators in groups of three are accepted (``"1,234"`` → 1234.0).
    """
    if not isinstance(text, str):
        return None
    body = text.strip()
    if body.endswith("%"):
        body = body[:-1].rstrip()
    if re.fullmatch(NUMBER_PATTERN, body) is None:
        return None
    value = _to_float(body)
    return value if math.isfinite(value) else None


def first_number(text: str) -> float | None:
    """The first number that appears in ``text`` (``"about 3.5 m"`` → 3.5), else ``None``.

    A number glued to a preceding letter/digit/point (``"x2"``) is not taken as the start of a number.
    """
    match = _NUMBER.search(text)
    if match is None:
        return None
    value = _to_float(match.group(0))
    return value if math.isfinite(value) else None


def parse_box(text: str) -> tuple[float, float, float, float] | None:
    """The first ``[x1, y1, x2, y2]`` (or, failing that, ``(x1, y1, x2, y2)``) group in ``text``."""
    for pattern in (_BOX_BRACKETS, _BOX_PARENS):
        match = pattern.search(text)
        if match is not None:
            x1, y1, x2, y2 = (_to_float(g) for g in match.groups())
            return (x1, y1, x2, y2)
    return None


def parse_point(text: str) -> tuple[float, float] | None:
    """The first ``(x, y)`` or ``[x, y]`` group with exactly two numbers in ``text``."""
    match = _POINT.search(text)
    if match is None:
        return None
    return (_to_float(match.group(1)), _to_float(match.group(2)))


# --------------------------------------------------------------------------------------------------
# Edit distance
# --------------------------------------------------------------------------------------------------

def levenshtein(a: str, b: str) -> int:
    """Character edit distance (insertions, deletions, substitutions cost 1), O(|a|·|b|) time."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]
