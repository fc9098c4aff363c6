"""The ``model`` section of a profile and the one function that turns it into a model."""

from __future__ import annotations

from dataclasses import dataclass

from cvitkit.config import option
from cvitkit.errors import ConfigError
from cvitkit.models.loading import QUANTIZATION_CHOICES

SOURCES = ("tiny", "base", "path")


@dataclass
class ModelConfig:
    """Which multimodal LLM a run adapts."""

    source: str = option("tiny", help="tiny: random tiny LLaVA from `preset`; base: the kit-pretrained tiny "
                                      "LLaVA (built by the base_model stage); path: a real model folder.")
    preset: str = option("tiny-3m", help="Tiny model preset (micro, tiny-3m, tiny-20m) for source tiny/base.")
    path: str = option("", help="Local folder of a Hugging Face-format MLLM, for source: path.")
    quantization: str = option("none", help="none, 8bit or 4bit (QLoRA: nf4, double quantisation).")
    dtype: str = option("auto", help="Weight dtype for unquantised models: auto, float32, bfloat16, float16.")
    gradient_checkpointing: bool = option(False, help="Recompute activations in the backward pass to save memory.")
    seed: int = option(0, help="Initialisation seed of tiny models.")

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ConfigError(f"model.source must be one of {SOURCES}, got {self.source!r}.")
        if self.quantization not in QUANTIZATION_CHOICES:
            raise ConfigError(f"model.quantization must be one of {QUANTIZATION_CHOICES}, got {self.quantization!r}.")
        if self.source == "path" and not self.path:
            raise ConfigError("model.source is 'path' but model.path is empty: pass --model /path/to/model-folder.")


def load_from_config(cfg: ModelConfig, *, base_dir: str | None = None, corpus=()):
    """``(model, processor)`` for a :class:`ModelConfig`.

    ``base_dir`` is where the kit-pretrained base model lives (``source: base``); a tiny model with
    ``quantization`` other than none is saved to a temporary folder and reloaded through the same
    :func:`~cvitkit.models.load_model` path that real checkpoints take.
    """
    import tempfile

    from cvitkit.models.loading import load_model
    from cvitkit.models.tiny import build_tiny_llava

    if cfg.source == "path":
        return load_model(cfg.path, quantization=cfg.quantization, dtype=cfg.dtype)
    if cfg.source == "base":
        if not base_dir:
            raise ConfigError("model.source is 'base' but no base model folder was given; run the base_model stage.")
        return load_model(base_dir, quantization=cfg.quantization, dtype=cfg.dtype)
    model, processor = build_tiny_llava(cfg.preset, corpus=corpus, seed=cfg.seed)
    if cfg.quantization == "none":
        return model, processor
    with tempfile.TemporaryDirectory(prefix="cvitkit-tiny-") as tmp:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        return load_model(tmp, quantization=cfg.quantization)
