"""Procedurally generated analogues of the benchmarks: task families × visual domains (PIL only).

>>> s = generate("vqa", "natural", {"questions": ["count"]}, sample_rng(0, "demo", 0), 64)
>>> s.question, s.answer   # doctest: +SKIP
('How many trees are there?', '3')

Every sample is a pure function of ``(seed, suite, task, split, index)`` (:func:`sample_rng`), so
generation can be split across processes and still give byte-identical files.
"""

from __future__ import annotations

import random

from cvitkit.data.synthetic import families as _families  # noqa: F401  (registers the families)
from cvitkit.data.synthetic import families_text as _families_text  # noqa: F401
from cvitkit.data.synthetic.base import FAMILIES, Family, Sample
from cvitkit.data.synthetic.domains import DOMAINS, Domain
from cvitkit.errors import ConfigError


def sample_rng(seed: int, *parts) -> random.Random:
    """A private RNG for one sample. String seeds are hashed with SHA-512 by :mod:`random`, so the
    stream does not depend on ``PYTHONHASHSEED``, the platform or the order samples are made in."""
    return random.Random("/".join(str(p) for p in (seed, *parts)))


def check_options(family: str, options: dict, where: str = "generator") -> dict:
    """Merge ``options`` over the family's defaults; an unknown key raises :class:`ConfigError`."""
    if family not in FAMILIES:
        raise ConfigError(f"unknown family '{family}'. Valid families: {', '.join(FAMILIES)}.")
    defaults = FAMILIES[family].options
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise ConfigError(f"{where}: unknown option(s) {unknown} for family '{family}'. "
                          f"Valid options: {', '.join(defaults) or 'none'}.")
    return {**defaults, **options}


def generate(family: str, domain: str, options: dict, rng: random.Random, size: int) -> Sample:
    """One :class:`Sample` of ``family`` drawn in ``domain`` at ``size`` × ``size`` pixels."""
    if domain not in DOMAINS:
        raise ConfigError(f"unknown domain '{domain}'. Valid domains: {', '.join(DOMAINS)}.")
    opts = check_options(family, options)
    try:
        return FAMILIES[family].fn(rng, DOMAINS[domain], size, opts)
    except (ValueError, KeyError, IndexError) as exc:
        raise ConfigError(f"family '{family}' cannot generate in domain '{domain}' with options {options}: {exc}. "
                          "Check the task's generator options in its suite YAML.") from exc


__all__ = ["DOMAINS", "FAMILIES", "Domain", "Family", "Sample", "check_options", "generate", "sample_rng"]
