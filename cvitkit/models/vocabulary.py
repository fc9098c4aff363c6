"""Seed text for the tiny model's tokenizer.

The tokenizer is a byte-level BPE, so it can encode any text; the corpus only decides which words
become single tokens (shorter sequences, faster training). The data package adds the instructions
and answers of the synthetic suites to this list when it builds the base model.
"""

from __future__ import annotations

from cvitkit.models.prompt import render_vicuna_v1

_WORDS = """
what which where how many is are the a an of in on at to with and or not this that there image picture photo
colour color shape object objects count number answer question single word phrase letter option options
choose from given choices directly short yes no left right above below top bottom middle center centre
red green blue yellow orange purple pink brown black white gray grey cyan circle square triangle star
cross diamond ring bar line chart plot trend up down rising falling flat value box click button icon
read text written title word label class category scene place describe caption sentence first second third
near far next beside between inside outside large small big tiny one two three four five six seven eight nine ten
zero plus minus times equals sum result what's unanswerable unknown cannot be determined provide bounding
coordinates region referring expression point target screen menu settings search home back
""".split()


def base_corpus() -> list[str]:
    """Template lines and words every kit tokenizer learns, whatever the suites."""
    lines = [" ".join(_WORDS), " ".join(w.capitalize() for w in _WORDS)]
    lines.append(render_vicuna_v1([("user", "<image>\nWhat is shown?"), ("assistant", "A red circle.")],
                                  add_generation_prompt=True))
    lines.append("Answer the question using a single word or phrase.")
    lines.append("Answer with the option's letter from the given choices directly. A. B. C. D.")
    lines.append("[0.12, 0.34, 0.56, 0.78] (0.5, 0.5) 0 1 2 3 4 5 6 7 8 9 + - * / = %")
    return lines
