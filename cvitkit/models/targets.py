"""Which linear layers get LoRA: the language model only, never the vision tower.

peft matches a *string* ``target_modules`` with ``re.fullmatch`` against full module names. A bare
list such as ``["q_proj", "v_proj"]`` would also wrap the CLIP tower's ``q_proj``/``v_proj``, so the kit
always builds a regex anchored on ``language_model``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from cvitkit.errors import ConfigError

#: Projection names per preset (Llama naming, shared by Vicuna, Mistral, Qwen2 and most LLMs).
TARGET_PRESETS: dict[str, tuple[str, ...]] = {
    "attention": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "attention_qv": ("q_proj", "v_proj"),
    "ffn": ("gate_proj", "up_proj", "down_proj"),
    "all_linear": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
}

#: Substrings that mark modules which must never be adapted.
FORBIDDEN_PARTS = ("vision_tower", "vision_model", "visual", "multi_modal_projector", "lm_head")


def lora_target_regex(targets: str | Sequence[str] = "attention", scope: str = "language_model") -> str:
    """A ``target_modules`` regex for peft restricted to ``scope`` (default: the language model).

    ``targets`` is a preset name (see :data:`TARGET_PRESETS`) or a list of projection names.
    """
    if isinstance(targets, str):
        if targets not in TARGET_PRESETS:
            raise ConfigError(
                f"unknown LoRA target preset '{targets}'. Choose one of {', '.join(TARGET_PRESETS)} "
                f"or give a list of projection names such as ['q_proj', 'v_proj']."
            )
        names = TARGET_PRESETS[targets]
    else:
        names = tuple(targets)
        if not names or not all(isinstance(n, str) and re.fullmatch(r"\w+", n) for n in names):
            raise ConfigError(f"LoRA targets must be projection names like 'q_proj', got {list(targets)!r}.")
    return rf".*{re.escape(scope)}\..*\.({'|'.join(map(re.escape, names))})"


def matched_modules(model, target_regex: str) -> list[str]:
    """Names of the ``nn.Linear``-like modules that ``target_regex`` selects (as peft would)."""
    pattern = re.compile(target_regex)
    return [name for name, module in model.named_modules()
            if pattern.fullmatch(name) and hasattr(module, "in_features")]


def check_targets(model, target_regex: str) -> list[str]:
    """Return the matched module names; raise if none match or any lies outside the language model."""
    names = matched_modules(model, target_regex)
    if not names:
        raise ConfigError(
            f"LoRA target pattern {target_regex!r} matches no linear layer of this model. "
            "Check the projection names in the model (print(model)) and the target preset."
        )
    bad = [n for n in names if any(part in n for part in FORBIDDEN_PARTS)]
    if bad:
        raise ConfigError(
            f"LoRA target pattern {target_regex!r} would wrap modules outside the language model: {bad[:3]}. "
            "Restrict it to the language model (use cvitkit.models.lora_target_regex)."
        )
    return names
