"""Instruction styles of the synthetic generator: ``default`` and ``diverse`` (BranchLoRA's "10Type" study).

The ``diverse`` style gives every question type about ten phrasings: the default ones of
:data:`~cvitkit.data.synthetic.templates.TEMPLATES` plus the :data:`EXTRA` ones below — the
synthetic counterpart of CoIN's ``Instruction_Type2`` folder. It applies to training samples only
(:func:`cvitkit.data.build.make_samples`), so test records are the same in both styles.

The extra phrasings use only words that are already whole tokens of the tiny tokenizer and are
deliberately *not* part of :func:`cvitkit.data.corpus`: adding them would change the tokenizer and
with it the cached base model of every profile. Sentence-initial words are ones the corpus already
starts sentences with (What, Which, How, Is, Can, Tell, Give, Name, ...), which are whole tokens too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from cvitkit.data.config import INSTRUCTION_STYLES as STYLES

#: Phrasings added to the default ones in the ``diverse`` style (same placeholders as the default key).
EXTRA: dict[str, tuple[str, ...]] = {
    "vqa.colour": ("Which colour is the {kind} in the picture?", "What is the colour of the {kind} in this image?",
                   "Tell me which colour the {kind} has.", "Name the colour of the {kind}.",
                   "In this image, what colour is the {kind}?", "What colour does the {kind} in the photo have?"),
    "vqa.kind": ("Which object in the image is {colour}?", "Name the object that is {colour}.",
                 "What is the {colour} thing in the picture?", "Tell me what the {colour} object is.",
                 "What object is shown in {colour}?", "Can you name the {colour} object in this photo?"),
    "vqa.count": ("Count the {kinds}.", "How many {kinds} can you see?", "How many {kinds} are shown in this photo?",
                  "Tell me the number of {kinds} in the image.", "Give the number of {kinds} in the picture.",
                  "What is the count of {kinds} in this image?"),
    "vqa.presence": ("Is there {obj} in this picture?", "Does this photo show {obj}?",
                     "Can {obj} be seen in the image?", "Do you see {obj} in the picture?",
                     "Is {obj} present in the image?", "Does the picture have {obj} in it?"),
    "classify": ("What kind of object is shown?", "Name the main object in this photo.",
                 "Which class does the object in the picture belong to?", "Classify the object in the image.",
                 "Tell me what object is in the picture."),
    "scene": ("What place is shown in this picture?", "Which kind of scene is this?",
              "Name the scene shown in the image.", "Where was this photo taken?",
              "Classify the place shown in this photo.", "What type of scene does the image show?"),
    "relation.side": ("Is the {a} on the left or on the right of the {b}?",
                      "Where is the {a} relative to the {b}, left or right?",
                      "Which side of the {b} is the {a} on, left or right?",
                      "Is the {a} placed to the left or to the right of the {b}?",
                      "On the left or on the right of the {b}: where is the {a}?",
                      "Is the {a} left or right of the {b}?", "In the picture, is the {a} left or right of the {b}?"),
    "relation.vertical": ("Is the {a} placed above the {b} or below it?",
                          "Where is the {a} relative to the {b}, above or below?",
                          "Is the {a} above the {b} or below the {b}?", "Where is the {a}, above or below the {b}?",
                          "Is the {a} shown above or below the {b}?",
                          "In the picture, is the {a} above or below the {b}?",
                          "Is the {a} seen above or below the {b}?",
                          "Answer above or below: where is the {a} relative to the {b}?"),
    "relation.yesno": ("Is the {a} placed to the {rel} of the {b}?", "Is the {a} seen to the {rel} of the {b}?",
                       "Can the {a} be seen to the {rel} of the {b}?", "Is the {a} shown to the {rel} of the {b}?",
                       "In the picture, is the {a} to the {rel} of the {b}?", "Is the {a} on the {rel} of the {b}?",
                       "Is the {b} next to the {a}, with the {a} on its {rel} side?",
                       "Is the {a} shown on the {rel} side of the {b}?"),
    "relation.which": ("Which object is to the {rel} of the {b}?", "What can you see to the {rel} of the {b}?",
                       "Name the object on the {rel} side of the {b}.",
                       "What thing is placed to the {rel} of the {b}?",
                       "Tell me what is on the {rel} side of the {b}.", "What is next to the {b}, on its {rel} side?",
                       "In the picture, what is to the {rel} of the {b}?"),
    "relation.colour_of": ("Which colour is the object to the {rel} of the {b}?",
                           "What colour is the thing on the {rel} side of the {b}?",
                           "Name the colour of the object to the {rel} of the {b}.",
                           "Tell me the colour of what is to the {rel} of the {b}.",
                           "What colour does the object on the {rel} side of the {b} have?",
                           "In the picture, what colour is the object to the {rel} of the {b}?",
                           "Give the colour of the object placed to the {rel} of the {b}.",
                           "Which colour has the thing to the {rel} of the {b}?"),
    "mcq.shape": ("Which {noun} can you see in the {picture}?", "What {noun} is shown in the {picture}?",
                  "Name the {noun} shown in the {picture}.", "Which {noun} does the {picture} show?",
                  "Tell me which {noun} is in the {picture}.", "Which of the {noun}s is in the {picture}?",
                  "What is the {noun} in this {picture}?"),
    "mcq.colour": ("Which colour is the {kind} in the {picture}?",
                   "What is the colour of the {kind} in the {picture}?",
                   "Name the colour of the {kind} in this {picture}.",
                   "What colour does the {kind} in the {picture} have?",
                   "Tell me the colour of the {kind} in the {picture}.",
                   "In the {picture}, what colour is the {kind}?",
                   "Which colour does the {kind} in this {picture} have?", "Give the colour of the {kind}."),
    "mcq.count": ("Count the {kinds} in the {picture}.", "How many {kinds} does the {picture} show?",
                  "What is the number of {kinds} in the {picture}?",
                  "How many {kinds} can you see in this {picture}?", "Tell me how many {kinds} are in the {picture}.",
                  "Give the number of {kinds} in the {picture}.", "In the {picture}, how many {kinds} are there?",
                  "How many {kinds} are shown in the {picture}?"),
    "mcq.larger": ("Which of the objects is larger?", "Which object is bigger?", "Which object is the larger one?",
                   "Tell me which object is bigger.", "Which of the two objects takes up more space?",
                   "Name the larger object.", "What is the bigger object in the picture?"),
    "mcq.molecule": ("How many {element} atoms does this molecule have (red = oxygen, blue = nitrogen, black = "
                     "carbon)?",
                     "Count the {element} atoms. In this model red balls are oxygen, blue are nitrogen and black "
                     "are carbon.",
                     "What is the number of {element} atoms in the molecule? Red balls are oxygen, blue are "
                     "nitrogen and black are carbon.",
                     "In the molecule model (red = oxygen, blue = nitrogen, black = carbon), how many {element} "
                     "atoms are there?",
                     "Tell me how many {element} atoms the molecule has (red = oxygen, blue = nitrogen, black = "
                     "carbon).",
                     "In the model, red balls are oxygen, blue are nitrogen and black are carbon. How many "
                     "{element} atoms can you see?",
                     "Give the number of {element} atoms in this molecule model (red = oxygen, blue = nitrogen, "
                     "black = carbon).",
                     "How many {element} atoms are in the model? Red is oxygen, blue is nitrogen, black is carbon."),
    "mcq.lines": ("Which line is highest at the end?", "Which series ends with the highest value?",
                  "Which line has the highest value at the right end?", "Name the line that ends highest.",
                  "Tell me which series ends with the highest value.",
                  "Which line is at the top at the end of the plot?",
                  "What line ends with the highest value in the plot?", "Which series has the highest end value?"),
    "ocr.sign": ("What is written on the sign?", "Read the word on the sign.", "What word does the sign say?",
                 "Tell me what the sign says.", "Which word is written on the sign in the photo?",
                 "What text is on the sign?", "Read the sign in this image."),
    "ocr.page": ("Read the word in the image.", "What text is printed in the image?",
                 "Which word is written in the image?", "Tell me the large word on the page.",
                 "What word can you read on the page?", "What does the page say in large print?"),
    "ocr.title": ("Read the title of this book.", "What title is printed on the cover?",
                  "Tell me the title of this book.", "Which book is this?", "What is the title on this book cover?",
                  "Name the title of the book.", "What is written as the title of this book?"),
    "ocr.genre": ("Which genre is this book?", "What genre does this book belong to?",
                  "Tell me the genre of this book.", "What kind of book is this?", "Name the genre of the book.",
                  "Which type of book is shown?", "What is the book about?", "Classify this book by genre."),
    "ocr.genre_yesno": ("Is this book a {genre} book?", "Does this book belong to the {genre} genre?",
                        "Is the genre of this book {genre}?", "Is this a book about {genre}?",
                        "Is the book on the cover about {genre}?", "Is {genre} the genre of this book?",
                        "Does the cover show a {genre} book?", "Is the book shown a {genre} book?"),
    "ocr.doc_title": ("What is the document title?", "Read the title of the document.",
                      "Tell me the title of this document.", "Which title does the document have?",
                      "What is written as the heading of the document?", "Name the heading of this document.",
                      "What title is printed on the document?", "What heading does the document show?"),
    "ocr.boxed": ("What is written in the box?", "Read the word inside the box.", "Which word is in the box?",
                  "Tell me the word written in the box.", "What word can you read inside the box?",
                  "What text is printed in the box?", "Name the word in the box.", "What does the box say?"),
    "ocr.value": ("Which number is shown next to {word}?", "What value is written next to {word}?",
                  "Read the number next to {word}.", "Tell me the value for {word}.", "What number does {word} have?",
                  "Give the value shown for {word}.", "What is the number next to {word}?",
                  "Which value does {word} have?"),
    "ground": ("Please provide the bounding box of {expr}.", "Find {expr} and give its bounding box.",
               "What are the bounding box coordinates of {expr}?", "What is the bounding box of {expr}?",
               "Give the coordinates of the box of {expr}.", "Locate {expr} and provide its bounding box."),
    "math.digits": ("What is the result shown in the image?", "Compute the result of the expression.",
                    "Solve the problem in the image.", "Which number should replace the question mark?",
                    "Give the result of the arithmetic in the picture.", "Tell me the result of the expression.",
                    "What is the value of the expression in the image?"),
    "math.sub_colour": ("Remove all {colour} objects. How many objects are left?",
                        "Subtract every {colour} object. How many objects remain?",
                        "If you subtract all {colour} objects, how many objects are left?",
                        "Subtract all {colour} objects. What is the number of objects left?",
                        "Subtract the {colour} objects. How many objects are there?",
                        "Remove every {colour} object. What is the number of objects left?",
                        "If all {colour} objects are taken out, how many objects remain?",
                        "Count the objects that are not {colour}."),
    "math.sub_kind": ("Remove all {kinds}. How many objects are left?",
                      "Subtract every {kind}. How many objects remain?",
                      "If you subtract all {kinds}, how many objects are left?",
                      "Subtract all {kinds}. What is the number of objects left?",
                      "Subtract the {kinds}. How many objects are there?",
                      "Remove every {kind}. What is the number of objects left?",
                      "If all {kinds} are taken out, how many objects remain?",
                      "Count the objects that are not {kinds}."),
    "math.add": ("If you add {n} {kinds}, how many {kinds} are there?",
                 "Add {n} more {kinds}. How many {kinds} are there?",
                 "Add {n} {kinds} to the picture. How many {kinds} are there?",
                 "Add {n} {kinds}. What is the number of {kinds}?",
                 "If there are {n} more {kinds}, how many {kinds} are there?",
                 "If you add {n} more {kinds}, what is the number of {kinds}?", "Add {n} {kinds}. Count the {kinds}.",
                 "Add {n} more {kinds}. Count the {kinds} in the picture."),
    "chart.trend_yesno": ("Is the {subject} going {direction}?",
                          "Does the {subject} move {direction} over the period?",
                          "Is the trend of the {subject} {direction}?",
                          "Is the {subject} going {direction} from left to right?",
                          "Does the {subject} go {direction} over the period?",
                          "Is the overall trend of the {subject} {direction}?",
                          "Can the {subject} be seen going {direction}?",
                          "Does the chart show the {subject} going {direction}?"),
    "chart.trend": ("Which trend does the {subject} show over the period?",
                    "How does the {subject} move: up, down or flat?",
                    "Is the trend of the {subject} up, down or flat?",
                    "Describe the trend of the {subject} in one word.", "Tell me the trend of the {subject}.",
                    "Is the {subject} going up, down or flat over the period?",
                    "What trend does the chart show for the {subject}?"),
    "chart.trend_mcq": ("Which trend does the chart show for the {subject}?", "Which trend does the {subject} show?",
                        "How does the {subject} go over the period?", "Describe the overall trend of the {subject}.",
                        "Tell me the trend of the {subject} over the period.", "What trend does the {subject} have?",
                        "Which option describes the trend of the {subject}?",
                        "How is the {subject} going over the period?"),
    "chart.value": ("What value is shown by the {colour} bar?", "Read the value of the {colour} bar.",
                    "Tell me the value of the {colour} bar.", "What number does the {colour} bar show?",
                    "Give the value of the {colour} bar.", "How high does the {colour} bar go?",
                    "Which value does the {colour} bar have?"),
    "chart.max": ("Which bar is the highest?", "What colour is the tallest bar?",
                  "Which colour has the largest value?", "Name the colour of the tallest bar.",
                  "Tell me which bar is the tallest.", "Which bar has the highest value?",
                  "What is the colour of the highest bar?"),
    "gui": ("Please press the {label} button.", "Click the {label} button.", "Where is the {label} button?",
            "Find the {label} button on the screen.", "Which point should I click to press {label}?",
            "Tap on the {label} button.", "Give the point to click for the {label} button."),
    "caption": ("Describe this image in one sentence.", "Write a caption for the image.", "Give a short caption.",
                "What is shown in this picture? Answer in one sentence.", "Describe the picture briefly.",
                "Caption this photo in one short sentence."),
}


_STYLE: ContextVar[str] = ContextVar("instruction_style", default="default")


def check_style(style: str, where: str = "data.instructions") -> str:
    """``style`` if it is a known instruction style, else a :class:`~cvitkit.errors.ConfigError`."""
    from cvitkit.errors import ConfigError

    if style not in STYLES:
        raise ConfigError(f"{where} must be one of {', '.join(STYLES)}, got {style!r}.")
    return style


@contextmanager
def instruction_style(style: str) -> Iterator[None]:
    """Generate with ``style``'s phrasings inside the ``with`` block (a context variable, so it is
    local to the thread or worker process that sets it)."""
    token = _STYLE.set(check_style(style))
    try:
        yield
    finally:
        _STYLE.reset(token)


def current_style() -> str:
    """The instruction style the generator uses now (``default`` outside :func:`instruction_style`)."""
    return _STYLE.get()


def phrasings(key: str, style: str = "default") -> tuple[str, ...]:
    """Every phrasing of question type ``key`` in ``style``."""
    from cvitkit.data.synthetic.templates import TEMPLATES

    return TEMPLATES[key] + (EXTRA.get(key, ()) if check_style(style) == "diverse" else ())
