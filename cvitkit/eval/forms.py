"""Answer forms: does a model still answer in the form a task asks for?

SMoLoRA's paper separates two kinds of forgetting: of what the model sees and of how it should answer
(instruction following). A model that answers a multiple-choice question with a caption has forgotten
the second kind, whatever it saw. Scores mix the two; this module measures the second on its own,
from the saved predictions alone, by sorting every answer into one coarse *form*:

``empty``        nothing after stripping;
``letter``       one option letter, ``B``, ``(b)``, ``C.``;
``number``       one number, ``3``, ``-0.5``, ``12%``;
``coordinates``  two or more numbers in a bracketed or comma-separated list, ``[0.1, 0.2, 0.5, 0.6]``,
                 ``(0.3, 0.4)`` (boxes and click points; a missing closing bracket still counts);
``short``        one to three words (classification labels, VQA answers, OCR words);
``sentence``     four words or more (captions).

:func:`form_match` is the share of predictions whose form equals their reference answer's form (the
first reference where a sample has several). It says nothing about whether the answer is right.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

FORMS = ("empty", "letter", "number", "coordinates", "short", "sentence")
#: Words from which an answer counts as a sentence.
SENTENCE_WORDS = 4

_LETTER = re.compile(r"^\(?[a-h]\)?[.)]?$", re.IGNORECASE)
_NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)%?$")
_NUM = r"[-+]?(\d+(\.\d*)?|\.\d+)"
_COORDS = re.compile(rf"^[\[(]?\s*{_NUM}(\s*,\s*{_NUM})+\s*,?\s*[\])]?$")


def answer_form(text) -> str:
    """The form of one answer (one of :data:`FORMS`)."""
    text = str(text if text is not None else "").strip()
    if not text:
        return "empty"
    if _LETTER.match(text):
        return "letter"
    if _NUMBER.match(text):
        return "number"
    if _COORDS.match(text):
        return "coordinates"
    return "short" if len(text.split()) < SENTENCE_WORDS else "sentence"


def reference_form(answer) -> str:
    """Form of a reference answer; with several references (captions, VQA annotators), the first one's."""
    if isinstance(answer, (list, tuple)):
        answer = answer[0] if answer else ""
    return answer_form(answer)


def form_match(predictions: Sequence[dict]) -> float | None:
    """Share of ``predictions`` (dicts with ``text`` and ``answer``) answered in their reference's form;
    None without predictions."""
    if not predictions:
        return None
    return sum(answer_form(p.get("text")) == reference_form(p.get("answer")) for p in predictions) / len(predictions)
