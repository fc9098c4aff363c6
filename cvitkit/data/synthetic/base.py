"""What a family returns (:class:`Sample`), the family registry and small shared helpers."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from PIL import Image

from cvitkit.data.synthetic.render import Box


@dataclass
class Sample:
    """One generated sample.

    ``answer`` is the training target; ``references`` the evaluation answer (a string, or a list of
    strings for multi-reference scorers); ``truth`` what was drawn (objects, boxes, counts), kept so
    that tests can check answers against the image; ``suffix`` overrides the task's prompt suffix for
    this sample (MLLM-CL Fin uses one suffix for yes/no and another for letter questions).
    """

    image: Image.Image
    question: str
    answer: str
    references: str | list[str] | None = None
    truth: dict = field(default_factory=dict)
    suffix: str | None = None

    def __post_init__(self):
        if self.references is None:
            self.references = self.answer


@dataclass(frozen=True)
class Family:
    """A task family: a generator function and its options with their defaults."""

    name: str
    description: str
    fn: Callable
    options: dict


FAMILIES: dict[str, Family] = {}


def family(name: str, description: str, **options):
    """Register ``fn(rng, domain, size, opts) -> Sample`` as family ``name`` with option defaults."""

    def wrap(fn):
        FAMILIES[name] = Family(name, description, fn, options)
        return fn

    return wrap


def pick(rng: random.Random, key: str, **fields) -> str:
    """A random template of ``key`` filled with ``fields``, in the current instruction style
    (:func:`cvitkit.data.synthetic.instructions.instruction_style`)."""
    from cvitkit.data.synthetic.instructions import current_style, phrasings
    from cvitkit.data.synthetic.templates import TEMPLATES

    style = current_style()
    if style == "default":
        return rng.choice(TEMPLATES[key]).format(**fields)
    # A side RNG seeded from the sample's RNG state picks the phrasing, and the sample's RNG advances
    # exactly as in the default style: images and answers stay those of the default style, only the
    # wording changes (a fair instruction-diversity comparison).
    side = random.Random(repr(rng.getstate()))
    rng.choice(TEMPLATES[key])
    return side.choice(phrasings(key, style)).format(**fields)


def choose_types(rng: random.Random, types, allowed) -> str:
    """One question type among ``types`` (a list from the options), checked against ``allowed``."""
    types = list(types) if isinstance(types, (list, tuple)) else [types]
    bad = [t for t in types if t not in allowed]
    if bad:
        raise ValueError(f"unknown question type(s) {bad}; allowed: {list(allowed)}")
    return rng.choice(types)


def int_range(rng: random.Random, value, cap: int | None = None) -> int:
    """An integer from ``value`` (an int, or ``[lo, hi]`` inclusive), capped at ``cap``."""
    lo, hi = (value, value) if isinstance(value, int) else value
    if cap is not None:
        hi, lo = min(hi, cap), min(lo, cap)
    return rng.randint(lo, hi)


def article(phrase: str) -> str:
    """``phrase`` with its indefinite article ('an orange tree', 'a red ball')."""
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


def norm_box(box: Box, size: int) -> str:
    """``[x1, y1, x2, y2]`` normalised to [0, 1] with two decimals (the RefCOCO answer format)."""
    return "[" + ", ".join(f"{v / size:.2f}" for v in box) + "]"


def norm_point(x: float, y: float, size: int) -> str:
    return f"({x / size:.2f}, {y / size:.2f})"


def options_block(rng: random.Random, correct: str, distractors: list[str],
                  n_options: int) -> tuple[str, str, list[str]]:
    """Shuffle ``correct`` among distractors; returns the ``A. x`` lines, the correct letter and the options."""
    from cvitkit.data.synthetic.templates import LETTERS

    pool = [d for d in dict.fromkeys(distractors) if d != correct]
    opts = [correct, *rng.sample(pool, min(len(pool), n_options - 1))]
    rng.shuffle(opts)
    letter = LETTERS[opts.index(correct)]
    return "\n".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(opts)), letter, opts
