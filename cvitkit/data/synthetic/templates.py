"""Instruction templates and answer vocabularies of the synthetic families.

Several phrasings per question type so a model learns the task, not one string; the vocabularies
are small (a tiny model trained on ~1k samples per task must be able to learn them). The same
tables feed :func:`cvitkit.data.corpus` (the tiny tokenizer's training text).
"""

from __future__ import annotations

WORDS = ("CAT", "DOG", "SUN", "TREE", "BOOK", "FISH", "STAR", "MOON", "BIRD", "CAKE", "DOOR", "LAMP", "MILK",
         "RAIN", "SHIP", "SHOE", "KING", "ROAD", "LEAF", "BELL")
GUI_LABELS = ("HOME", "BACK", "MENU", "SEND", "SAVE", "OPEN", "PLAY", "STOP", "NEXT", "EDIT", "COPY", "EXIT")
#: Book-cover colour → genre (OCR-VQA also asks for the genre; here the cover colour tells it).
GENRES = {"romance": (200, 40, 70), "travel": (30, 110, 190), "cooking": (40, 150, 60), "history": (120, 80, 40),
          "science": (90, 40, 150)}
ELEMENTS = {"oxygen": ("red", (220, 40, 40)), "nitrogen": ("blue", (40, 80, 230)), "carbon": ("black", (25, 25, 25))}
LETTERS = "ABCDEFGH"

TEMPLATES: dict[str, tuple[str, ...]] = {
    # vqa
    "vqa.colour": (
        "What colour is the {kind}?",
        "What is the colour of the {kind}?",
        "Which colour does the {kind} have?",
        "Tell me the colour of the {kind}.",
    ),
    "vqa.kind": (
        "What is the {colour} object?",
        "Which object is {colour}?",
        "What kind of object is {colour}?",
        "Name the {colour} object.",
    ),
    "vqa.count": (
        "How many {kinds} are there?",
        "How many {kinds} are in the image?",
        "Count the {kinds} in the picture.",
        "What is the number of {kinds}?",
    ),
    "vqa.presence": (
        "Is there {obj}?",
        "Is there {obj} in the image?",
        "Does the image contain {obj}?",
        "Can you see {obj}?",
    ),
    # classification
    "classify": (
        "What is the object in the image?",
        "What object is shown in this picture?",
        "Which category does the main object belong to?",
        "Name the object in the image.",
        "What is this?",
    ),
    "scene": (
        "What kind of place is shown in the image?",
        "Which scene category does this image belong to?",
        "Where was this picture taken?",
        "Classify the scene in the image.",
    ),
    # relations (GQA-like)
    "relation.side": (
        "Is the {a} to the left or to the right of the {b}?",
        "On which side of the {b} is the {a}, left or right?",
        "Is the {a} on the left or the right side of the {b}?",
    ),
    "relation.vertical": ("Is the {a} above or below the {b}?", "Is the {a} placed above or below the {b}?"),
    "relation.yesno": ("Is the {a} to the {rel} of the {b}?", "Is the {a} on the {rel} side of the {b}?"),
    "relation.which": (
        "What is to the {rel} of the {b}?",
        "Which object is on the {rel} side of the {b}?",
        "What object is to the {rel} of the {b}?",
    ),
    "relation.colour_of": (
        "What colour is the object to the {rel} of the {b}?",
        "What is the colour of the thing on the {rel} side of the {b}?",
    ),
    # multiple choice (science style)
    "mcq.shape": (
        "Which {noun} is shown in the {picture}?",
        "What {noun} does the {picture} show?",
        "Which of these {noun}s appears in the {picture}?",
    ),
    "mcq.colour": ("What colour is the {kind} in the {picture}?", "Which colour does the {kind} have?"),
    "mcq.count": ("How many {kinds} are in the {picture}?", "How many {kinds} can be seen in the {picture}?"),
    "mcq.larger": (
        "Which object is larger?",
        "Which of the two objects is bigger?",
        "Which object takes up more space?",
    ),
    "mcq.molecule": (
        "In this molecule model red balls are oxygen, blue are nitrogen and black are carbon. How many "
        "{element} atoms are there?",
        "Count the {element} atoms in the molecule (red = oxygen, blue = nitrogen, black = carbon).",
    ),
    "mcq.lines": ("Which line ends with the highest value?", "Which series is highest at the right end of the plot?"),
    # reading text
    "ocr.sign": (
        "What does the sign say?",
        "What word is written on the sign?",
        "What is written on the sign in this picture?",
    ),
    "ocr.page": (
        "What is written in the image?",
        "What word is printed in the image?",
        "Read the word in large print.",
        "What is the large word on the page?",
    ),
    "ocr.title": (
        "What is the title of this book?",
        "What is the name of this book?",
        "Which title is printed on this book cover?",
    ),
    "ocr.genre": ("What is the genre of this book?", "What type of book is this?"),
    "ocr.genre_yesno": ("Is this a {genre} book?", "Is this book about {genre}?"),
    "ocr.doc_title": ("What is the title of the document?", "What is the heading of this document?"),
    "ocr.boxed": ("What word is written in the box?", "Which word appears inside the box?"),
    "ocr.value": ("What number is shown next to {word}?", "What is the value for {word}?"),
    # grounding (RefCOCO in LLaVA format)
    "ground": (
        "Please provide the bounding box coordinate of the region this sentence describes: {expr}.",
        "Give the bounding box of {expr}.",
        "Where is {expr}? Answer with a bounding box.",
        "Locate {expr} in the image and output its box.",
    ),
    # arithmetic
    "math.digits": (
        "What is the result of the expression in the image?",
        "Compute the value shown in the image.",
        "Solve the arithmetic problem in the picture.",
        "What number should replace the question mark?",
    ),
    "math.sub_colour": (
        "Subtract all {colour} objects. How many objects are left?",
        "Remove all {colour} objects. How many objects remain?",
    ),
    "math.sub_kind": (
        "Subtract all {kinds}. How many objects are left?",
        "Remove every {kind}. How many objects remain?",
    ),
    "math.add": (
        "Add {n} {kinds}. How many {kinds} are there?",
        "If you add {n} more {kinds}, how many {kinds} are there?",
    ),
    # charts
    "chart.trend_yesno": (
        "Is the {subject} going {direction} over the period?",
        "Does the {subject} go {direction} from left to right?",
    ),
    "chart.trend": (
        "What is the trend of the {subject}?",
        "Is the {subject} going up, down or flat?",
        "Describe the overall trend of the {subject} in one word.",
    ),
    "chart.trend_mcq": ("What is the overall trend of the {subject}?", "How does the {subject} move over the period?"),
    "chart.value": (
        "What is the value of the {colour} bar?",
        "How high is the {colour} bar?",
        "What value does the {colour} bar show?",
    ),
    "chart.max": ("Which bar is the tallest?", "Which colour has the highest bar?", "Which bar has the largest value?"),
    # GUI
    "gui": (
        "Click on the {label} button.",
        "Tap the {label} button.",
        "Where should I click to press {label}?",
        "Find the {label} button and give the point to click.",
    ),
    # captions
    "caption": (
        "Describe the image briefly.",
        "Write a short caption for the image.",
        "What does this picture show? Answer in one sentence.",
        "Give a one-sentence description of the image.",
    ),
}

#: Caption reference patterns: {objs} objects left to right, {objs_rev} right to left, {where} setting phrase.
CAPTIONS = ("{objs} {where}", "there is {objs} {where}", "a picture of {objs} {where}", "{objs_rev} {where}",
            "an image showing {objs} {where}")
CAPTIONS_TEXT = ("a sign that says {word} {where}", "a white sign reading {word} {where}",
                 "a sign with the word {word} {where}", "there is a sign saying {word} {where}")
CAPTIONS_BLURRY = ("a blurry photo of {objs}", "a dark, tilted photo of {objs}", "a low quality picture of {objs}")
SETTING_PHRASE = {"outdoors": "on the grass", "aerial": "seen from above", "slide": "on a slide", "road": "on the road",
                  "diagram": "in a diagram", "chart": "in a chart", "page": "on a page", "screen": "on a screen",
                  "studio": "on a pastel background", "render": "on a gray floor"}

ANSWER_WORDS = ("yes", "no", "left", "right", "above", "below", "up", "down", "flat", "unanswerable")


def template_lines() -> list[str]:
    """Every template string (for the tokenizer corpus), in a fixed order."""
    lines = [t for key in TEMPLATES for t in TEMPLATES[key]]
    return lines + list(CAPTIONS) + list(CAPTIONS_TEXT) + list(CAPTIONS_BLURRY) + list(SETTING_PHRASE.values())
