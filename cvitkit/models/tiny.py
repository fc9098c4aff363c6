"""Tiny LLaVA models built from configs only (no download): a small CLIP vision tower, a small
Llama language model, an offline tokenizer and a LLaVA processor.

They play the multimodal LLM in tests and in the ``smoke``/``mini`` profiles. The structure, module
names and processor behaviour are those of a real ``llava-hf`` checkpoint, so every code path
(LoRA targets, 4-bit loading, routing hooks) is the one a real model takes.

>>> model, processor = build_tiny_llava("tiny-3m")          # doctest: +SKIP
>>> model.save_pretrained(d); processor.save_pretrained(d)   # doctest: +SKIP
>>> load_model(d)                                           # same logits  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from cvitkit.config import ConfigError, from_dict, option


@dataclass
class TinyLlavaConfig:
    """Shape of a tiny LLaVA. Presets: see :data:`PRESETS`."""

    image_size: int = option(64, help="Input image side in pixels (images are resized to this square).")
    patch_size: int = option(8, help="ViT patch side; the model sees (image_size/patch_size)**2 image tokens.")
    vision_hidden: int = option(128, help="Hidden size of the CLIP vision tower.")
    vision_layers: int = option(2, help="Transformer layers in the vision tower.")
    vision_heads: int = option(4, help="Attention heads in the vision tower.")
    text_hidden: int = option(256, help="Hidden size of the Llama language model.")
    text_layers: int = option(2, help="Transformer layers in the language model.")
    text_heads: int = option(4, help="Attention heads in the language model.")
    text_intermediate: int = option(512, help="MLP width of the language model.")
    vocab_size: int = option(2048, help="Target BPE vocabulary size (the trained vocabulary may be smaller).")
    max_positions: int = option(512, help="Maximum sequence length (image tokens included).")

    def __post_init__(self):
        if self.image_size % self.patch_size:
            raise ConfigError(f"image_size ({self.image_size}) must be a multiple of patch_size ({self.patch_size}).")
        for name in ("vision", "text"):
            hidden, heads = getattr(self, f"{name}_hidden"), getattr(self, f"{name}_heads")
            if hidden % heads:
                raise ConfigError(f"{name}_hidden ({hidden}) must be divisible by {name}_heads ({heads}).")

    @property
    def num_image_tokens(self) -> int:
        return (self.image_size // self.patch_size) ** 2


#: Named sizes. ``micro`` is for unit tests; ``tiny-3m`` the smoke/mini default; ``tiny-20m`` the
#: larger mini option (parameter counts with a 2k vocabulary).
PRESETS: dict[str, TinyLlavaConfig] = {
    "micro": TinyLlavaConfig(image_size=32, patch_size=8, vision_hidden=32, vision_layers=1, vision_heads=2,
                             text_hidden=64, text_layers=2, text_heads=2, text_intermediate=128, vocab_size=1024,
                             max_positions=256),
    "tiny-3m": TinyLlavaConfig(),
    "tiny-20m": TinyLlavaConfig(vision_hidden=256, vision_layers=4, vision_heads=4, text_hidden=512, text_layers=4,
                                text_heads=8, text_intermediate=1376),
}


def resolve_tiny_config(preset: str | TinyLlavaConfig | dict, **overrides) -> TinyLlavaConfig:
    """A preset name, a config or a mapping (+ keyword overrides) → :class:`TinyLlavaConfig`."""
    if isinstance(preset, TinyLlavaConfig):
        cfg = preset
    elif isinstance(preset, dict):
        cfg = from_dict(TinyLlavaConfig, preset, source="tiny model config")
    elif preset in PRESETS:
        cfg = PRESETS[preset]
    else:
        raise ConfigError(f"unknown tiny model preset '{preset}'. Choose one of: {', '.join(PRESETS)}.")
    if overrides:
        cfg = from_dict(TinyLlavaConfig, {**dataclasses.asdict(cfg), **overrides}, source="tiny model overrides")
    return cfg


def build_processor(cfg: TinyLlavaConfig, corpus: Iterable[str] = ()):
    """Tokenizer (trained on the kit's base corpus plus ``corpus``) and LLaVA processor."""
    from transformers import LlavaProcessor
    from transformers.models.clip import CLIPImageProcessorPil

    from cvitkit.models.prompt import VICUNA_V1_JINJA
    from cvitkit.models.tokenizer import train_tokenizer
    from cvitkit.models.vocabulary import base_corpus

    tokenizer = train_tokenizer([*base_corpus(), *corpus], vocab_size=cfg.vocab_size)
    # CLIPImageProcessorPil: the torchvision-free processor class, which also reloads as itself.
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": cfg.image_size},
        crop_size={"height": cfg.image_size, "width": cfg.image_size},
    )
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=cfg.patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # the CLS token, dropped by the "default" strategy
        chat_template=VICUNA_V1_JINJA,
    )


def build_tiny_llava(preset: str | TinyLlavaConfig | dict = "tiny-3m", corpus: Iterable[str] = (), seed: int = 0,
                     **overrides):
    """Build a randomly initialised tiny LLaVA and its processor.

    Returns ``(model, processor)``. Deterministic for a given preset, corpus and seed.
    """
    import torch
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    cfg = resolve_tiny_config(preset, **overrides)
    processor = build_processor(cfg, corpus)
    tok = processor.tokenizer
    vision = CLIPVisionConfig(
        image_size=cfg.image_size, patch_size=cfg.patch_size, hidden_size=cfg.vision_hidden,
        intermediate_size=2 * cfg.vision_hidden, num_hidden_layers=cfg.vision_layers,
        num_attention_heads=cfg.vision_heads,
    )
    text = LlamaConfig(
        vocab_size=len(tok), hidden_size=cfg.text_hidden, intermediate_size=cfg.text_intermediate,
        num_hidden_layers=cfg.text_layers, num_attention_heads=cfg.text_heads, num_key_value_heads=cfg.text_heads,
        max_position_embeddings=cfg.max_positions, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, tie_word_embeddings=False,
    )
    config = LlavaConfig(
        vision_config=vision, text_config=text,
        # Must be the tokenizer's id: transformers defaults to 32000 and does not check it.
        image_token_index=tok.image_token_id,
        # A 2-layer tower has no useful penultimate layer, so read the last one.
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.bos_token_id = tok.bos_token_id
    model.eval()
    return model, processor


def count_parameters(model) -> dict[str, int]:
    """Parameter counts by part: vision tower, projector, language model (+ head), trainable, total."""
    parts = {"vision_tower": 0, "projector": 0, "language_model": 0, "other": 0}
    trainable = total = 0
    for name, p in model.named_parameters():
        n = p.numel()
        total += n
        trainable += n if p.requires_grad else 0
        key = ("vision_tower" if "vision_tower" in name else "projector" if "multi_modal_projector" in name
               else "language_model" if ("language_model" in name or name.startswith("lm_head")) else "other")
        parts[key] += n
    return {**parts, "trainable": trainable, "total": total}
