"""The scorer registry: :class:`ScoreResult`, :class:`Scorer`, :func:`register`, :func:`score`.

A scorer is registered under a fixed name (suite configs refer to it by that name) with
:func:`register`, which refuses a second scorer of the same name. Two kinds exist:

* **per-sample** scorers are functions ``fn(prediction: str, reference, **params) -> float | None``
  returning a value in [0, 1], or ``None`` when the prediction cannot be parsed into the expected form
  (a *parse failure*: it scores 0 and stays in the denominator);
* **corpus-level** scorers (``corpus_level=True``) are functions
  ``fn(predictions: list[str], references: list, **params) -> CorpusOutput``.

Parameters are the keyword-only arguments of the function (with their defaults); :func:`score`
rejects unknown parameter names with a :class:`~cvitkit.errors.ConfigError` listing the valid ones.
A parameter named in ``per_sample_params`` may also be given as a list with one value per sample.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cvitkit.errors import ConfigError, DataError


@dataclass
class ScoreResult:
    """The outcome of scoring one prediction list against its references.

    ``score`` is on a 0–100 scale: 100 × the mean of ``per_sample`` for per-sample scorers; the
    corpus-level scorers document how ``score`` relates to ``per_sample`` (``cider`` can exceed 100).
    ``per_sample`` holds one value in [0, 1] per sample. ``parse_failures`` counts predictions that could
    not be parsed into the expected form (they score 0 and stay in ``n``); ``failed_indices`` lists them.
    ``components`` holds sub-scores of composite metrics (``caption_avg``), ``params`` the parameters used.
    """

    name: str
    score: float
    per_sample: list[float]
    n: int
    parse_failures: int = 0
    failed_indices: list[int] = field(default_factory=list)
    components: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, *, per_sample: bool = False) -> dict:
        """Plain-data view for results JSON; ``per_sample=True`` keeps the per-sample list."""
        data = dataclasses.asdict(self)
        if not per_sample:
            data.pop("per_sample")
        return data

    def __str__(self) -> str:
        return f"{self.name}: {self.score:.2f} (n={self.n}, parse failures={self.parse_failures})"


@dataclass
class CorpusOutput:
    """What a corpus-level scorer function returns (the registry adds name, n and params)."""

    score: float
    per_sample: list[float]
    failed_indices: list[int] = field(default_factory=list)
    components: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Scorer:
    """A registered scorer; call it like :func:`score` without the name."""

    name: str
    fn: Callable[..., Any]
    references: str
    parse_failure: str
    corpus_level: bool = False
    per_sample_params: tuple[str, ...] = ()

    @property
    def defaults(self) -> dict[str, Any]:
        """Parameter names and default values."""
        return {p.name: p.default for p in inspect.signature(self.fn).parameters.values()
                if p.kind is inspect.Parameter.KEYWORD_ONLY}

    @property
    def summary(self) -> str:
        """First line of the scorer's docstring."""
        return (inspect.getdoc(self.fn) or "").split("\n", 1)[0]

    @property
    def doc(self) -> str:
        return inspect.getdoc(self.fn) or ""

    def __call__(self, predictions: Sequence[str | None], references: Sequence[Any], **params: Any) -> ScoreResult:
        predictions = _check_predictions(self.name, predictions)
        references = list(references)
        if len(predictions) != len(references):
            raise DataError(
                f"scorer '{self.name}': {len(predictions)} predictions but {len(references)} references. "
                "Pass one reference entry (a string or a list of strings) per prediction, in the same order."
            )
        if not predictions:
            raise DataError(f"scorer '{self.name}': nothing to score (empty prediction list).")
        used = self._check_params(params, len(predictions))
        if self.corpus_level:
            out = self.fn(predictions, references, **used)
            failed = sorted(out.failed_indices)
            return ScoreResult(self.name, float(out.score), [float(v) for v in out.per_sample], len(predictions),
                               len(failed), failed, dict(out.components), used)
        per_sample: list[float] = []
        failed = []
        for i, (pred, ref) in enumerate(zip(predictions, references)):
            sample_params = {k: (v[i] if k in self.per_sample_params and isinstance(v, (list, tuple)) else v)
                             for k, v in used.items()}
            try:
                value = self.fn(pred, ref, **sample_params)
            except DataError as exc:
                raise DataError(f"scorer '{self.name}', sample {i}: {exc}") from exc
            if value is None:
                failed.append(i)
                value = 0.0
            value = float(value)
            if not (0.0 <= value <= 1.0) or math.isnan(value):
                raise AssertionError(f"scorer '{self.name}' returned {value} for sample {i}; expected [0, 1].")
            per_sample.append(value)
        return ScoreResult(self.name, 100.0 * sum(per_sample) / len(per_sample), per_sample, len(per_sample),
                           len(failed), failed, {}, used)

    def _check_params(self, params: dict[str, Any], n: int) -> dict[str, Any]:
        defaults = self.defaults
        unknown = [k for k in params if k not in defaults]
        if unknown:
            valid = ", ".join(sorted(defaults)) or "none"
            raise ConfigError(f"scorer '{self.name}' has no parameter '{unknown[0]}'. Valid parameters: {valid}.")
        used = {**defaults, **params}
        for key in self.per_sample_params:
            value = used.get(key)
            if isinstance(value, (list, tuple)) and len(value) != n:
                raise DataError(f"scorer '{self.name}': parameter '{key}' has {len(value)} values for {n} samples.")
        return used


#: name → scorer. Filled by :func:`register` when :mod:`cvitkit.eval.scorers` is imported.
SCORERS: dict[str, Scorer] = {}


def register(name: str, *, references: str, parse_failure: str = "never", corpus_level: bool = False,
             per_sample_params: Sequence[str] = ()) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering ``fn`` as scorer ``name``; a name already taken raises :class:`ConfigError`.

    ``references`` and ``parse_failure`` are one-line descriptions of the accepted reference format and
    of what counts as a parse failure (shown by :func:`describe_scorers`).
    """

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in SCORERS:
            raise ConfigError(f"scorer name '{name}' is already registered (by {SCORERS[name].fn.__qualname__}). "
                              "Pick another name.")
        SCORERS[name] = Scorer(name, fn, references, parse_failure, corpus_level, tuple(per_sample_params))
        return fn

    return decorate


def _ensure_loaded() -> None:
    import cvitkit.eval.scorers  # noqa: F401  (registers the built-in scorers)


def available_scorers() -> list[str]:
    """Sorted names of all registered scorers."""
    _ensure_loaded()
    return sorted(SCORERS)


def get_scorer(name: str) -> Scorer:
    """The scorer registered as ``name``; an unknown name raises :class:`ConfigError` listing valid names."""
    _ensure_loaded()
    if name not in SCORERS:
        close = difflib.get_close_matches(str(name), SCORERS, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"unknown scorer '{name}'.{hint} Valid names: {', '.join(sorted(SCORERS))}.")
    return SCORERS[name]


def score(name: str, predictions: Sequence[str | None], references: Sequence[Any], **params: Any) -> ScoreResult:
    """Score ``predictions`` against ``references`` (one entry per prediction) with scorer ``name``.

    ``None`` predictions are treated as empty outputs. Raises :class:`ConfigError` for an unknown
    scorer or parameter and :class:`DataError` (a ``ValueError``) for mismatched lengths or malformed
    references.
    """
    return get_scorer(name)(predictions, references, **params)


def describe_scorers() -> dict[str, dict[str, Any]]:
    """name → summary, accepted references, parse-failure rule and parameter defaults (for notebooks)."""
    _ensure_loaded()
    return {name: {"summary": s.summary, "references": s.references, "parse_failure": s.parse_failure,
                   "corpus_level": s.corpus_level, "params": s.defaults}
            for name, s in sorted(SCORERS.items())}


def _check_predictions(name: str, predictions: Sequence[str | None]) -> list[str]:
    if isinstance(predictions, str):
        raise DataError(f"scorer '{name}': predictions must be a list of strings, got a single string.")
    out = []
    for i, pred in enumerate(predictions):
        if pred is None:
            pred = ""
        if not isinstance(pred, str):
            raise DataError(f"scorer '{name}': prediction {i} is {type(pred).__name__} {pred!r}, expected a string.")
        out.append(pred)
    return out


# --------------------------------------------------------------------------------------------------
# Reference helpers used by the scorers
# --------------------------------------------------------------------------------------------------

def text_references(reference: Any) -> list[str]:
    """A reference entry as a non-empty list of strings (a string, a number or a list of those)."""
    items = reference if isinstance(reference, (list, tuple)) else [reference]
    if not items:
        raise DataError("empty reference list; every sample needs at least one reference answer.")
    out = []
    for item in items:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, (int, float)) and not isinstance(item, bool):
            out.append(str(item))
        else:
            raise DataError(f"reference {item!r} is a {type(item).__name__}; expected a string (or a list of strings).")
    return out
