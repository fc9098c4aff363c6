"""Wrap a (possibly 4-bit) base model with peft adapters: plain LoRA or a mixture of LoRA experts."""

from __future__ import annotations

from peft import LoraConfig, PeftModel, get_peft_model

from cvitkit.adapters.mixture import MixtureLoraConfig, MixtureLoraLinear
from cvitkit.adapters.state import TRAINABLE_PARTS
from cvitkit.errors import ConfigError
from cvitkit.models.targets import check_targets, lora_target_regex

PROJECTOR = "multi_modal_projector"


def _targets(model, targets: str) -> str:
    regex = lora_target_regex(targets)
    check_targets(model.get_base_model() if isinstance(model, PeftModel) else model, regex)
    return regex


def set_projector_trainable(model, trainable: bool) -> None:
    """The projector is a plain full-precision module: train it in place (peft freezes it by default)."""
    for name, p in model.named_parameters():
        if PROJECTOR in name:
            p.requires_grad_(trainable)


def set_part_trainable(model, part: str, trainable: bool) -> int:
    """Train ``part`` of the base model in full, in place (``vision_tower`` or ``lm_head``, see
    :data:`~cvitkit.adapters.state.TRAINABLE_PARTS`); returns its parameter count.

    LLaVA-style continual tuning keeps both frozen (every method of the kit does): these are the
    learnability probe's ``--train-tower`` and ``--train-head`` settings, which ask whether a tower shaped
    by the task reads what the frozen one drops, and whether the output head of a base model that never
    had to write a task's answer words holds the model back. The part's weights are then saved with the
    adapters."""
    if part not in TRAINABLE_PARTS:
        raise ConfigError(f"unknown part {part!r} to train; expected one of {TRAINABLE_PARTS}.")
    params = [p for name, p in model.named_parameters() if part in name]
    if not params:
        raise ConfigError(f"this model has no module named {part!r} to train: the probe's part options need a "
                          "LLaVA-style model (the kit's tiny LLaVA or a Hugging Face LLaVA).")
    for p in params:
        p.requires_grad_(trainable)
    return sum(p.numel() for p in params)


def add_lora(model, rank: int, alpha: float, dropout: float, targets: str = "all_linear",
             adapter_name: str = "default", train_projector: bool = True, init_lora_weights=True):
    """Add a LoRA adapter named ``adapter_name`` (creating the PeftModel on first use)."""
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=_targets(model, targets),
                        init_lora_weights=init_lora_weights)
    if isinstance(model, PeftModel):
        model.add_adapter(adapter_name, config)
    else:
        model = get_peft_model(model, config, adapter_name=adapter_name)
    set_projector_trainable(model, train_projector)
    return model


def add_mixture(model, rank: int, alpha: float, dropout: float, mixture: dict, targets: str = "all_linear",
                adapter_name: str = "default", train_projector: bool = True, routing_context=None,
                config_class: type[MixtureLoraConfig] = MixtureLoraConfig):
    """Add a mixture-of-LoRA-experts adapter (see :mod:`cvitkit.adapters.mixture`).

    ``routing_context`` (a :class:`~cvitkit.routers.RoutingContext`) is shared by every mixture layer;
    ``config_class`` selects a method's own layer type (a :class:`MixtureLoraConfig` subclass).
    """
    config = config_class(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=_targets(model, targets),
                          mixture=mixture)
    if isinstance(model, PeftModel):
        model.add_adapter(adapter_name, config)
    else:
        model = get_peft_model(model, config, adapter_name=adapter_name)
    for layer in mixture_layers(model):
        layer.routing_context = routing_context
    set_projector_trainable(model, train_projector)
    return model


def mixture_layers(model) -> list[MixtureLoraLinear]:
    return [m for m in model.modules() if isinstance(m, MixtureLoraLinear)]
