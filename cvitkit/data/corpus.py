"""Text of the synthetic generator, to train the tiny model's tokenizer on (:func:`corpus`).

The tokenizer is a byte-level BPE, so any text can be encoded; this corpus only decides which words
become single tokens. Same suites → same list, in the same order.
"""

from __future__ import annotations

from cvitkit.data.suites import available_suites, load_suite
from cvitkit.data.synthetic import DOMAINS
from cvitkit.data.synthetic.places import PLACE_PHRASE, PLACES
from cvitkit.data.synthetic.templates import ANSWER_WORDS, ELEMENTS, GENRES, GUI_LABELS, LETTERS, WORDS, template_lines


def _vocabulary(domains: list[str]) -> list[str]:
    words = []
    for name in domains:
        d = DOMAINS[name]
        words += list(d.kinds) + [d.plural(k) for k in d.kinds] + list(d.colours)
    words += list(PLACES) + list(PLACE_PHRASE.values()) + [w.lower() for w in WORDS] + [w.lower() for w in GUI_LABELS]
    words += list(GENRES) + list(ELEMENTS) + list(ANSWER_WORDS) + [str(i) for i in range(20)]
    words += [f"{c}." for c in LETTERS[:4]] + list(LETTERS[:4])
    return list(dict.fromkeys(words))


#: Suites whose text no language model reads (the vision tower's stage-0 captions), kept out of the
#: tokenizer corpus so that adding one does not change the vocabulary of every model.
IMAGE_ONLY_SUITES = ("vision_pretrain",)


def corpus(suites: list[str] | None = None, examples_per_task: int = 4) -> list[str]:
    """Every instruction template, prompt suffix, task description and answer word of ``suites``
    (default: all shipped suites), a few filled-in example prompts and answers per task (drawn at
    a fixed seed, so the list is deterministic), and the answer formats of boxes and points."""
    from cvitkit.data.build import question_text
    from cvitkit.data.synthetic import generate, sample_rng

    names = suites if suites is not None else [n for n in available_suites() if n not in IMAGE_ONLY_SUITES]
    loaded = [load_suite(n) for n in names]
    lines = template_lines()
    domains: list[str] = []
    for suite in loaded:
        for t in suite.tasks:
            lines += [t.prompt_suffix, t.description, *t.generator.get("suffixes", {}).values()]
            domains.append(t.domain)
            for i in range(examples_per_task):
                s = generate(t.family, t.domain, t.generator_options("train"), sample_rng("corpus", t.name, i), 32)
                lines += [question_text(s, t), s.answer]
    vocab = _vocabulary(list(dict.fromkeys(domains)))
    lines.append(" ".join(vocab))
    lines += ["[0.12, 0.34, 0.56, 0.78]", "(0.25, 0.75)", "A. up\nB. down\nC. flat", "unanswerable"]
    return [line for line in dict.fromkeys(lines) if line]
