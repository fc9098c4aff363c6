"""Save and load the trainable state of an adapted model (never the frozen base): safetensors."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from cvitkit.errors import CvitkitError


VISION_TOWER = "vision_tower"
LM_HEAD = "lm_head"
#: Modules of the base model that every method keeps frozen and the learnability probe may train in full
#: (``--train-tower``, ``--train-head``); where one is trained, a stage folder saves it with the adapters.
TRAINABLE_PARTS = (VISION_TOWER, LM_HEAD)


def _is_adapter_key(name: str) -> bool:
    # LoRA/mixture weights and routers carry "lora_"; the projector is trained by most methods and is
    # small, so it is always saved with the adapters (one folder is a complete stage).
    return "lora_" in name or "multi_modal_projector" in name


def _saved_keys(model: torch.nn.Module) -> set[str]:
    """The adapter keys, and those of each part of :data:`TRAINABLE_PARTS` that is trained (the probe's
    ``--train-tower``, ``--train-head``): a stage folder must hold every weight training changed, and the
    frozen base none."""
    trained = {part for n, p in model.named_parameters() for part in TRAINABLE_PARTS
               if part in n and p.requires_grad}
    return {k for k in model.state_dict() if _is_adapter_key(k) or any(part in k for part in trained)}


def adapter_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Every adapter parameter and persistent buffer (LoRA, experts, routers), the projector, and the
    vision tower or output head when it is trained."""
    keys = _saved_keys(model)
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if k in keys}


def save_adapter_state(model: torch.nn.Module, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(adapter_state_dict(model), str(tmp))
    tmp.replace(path)
    return path


def load_adapter_state(model: torch.nn.Module, path: str | Path, strict: bool = True) -> None:
    """Load tensors saved by :func:`save_adapter_state`; with ``strict``, every adapter key must match."""
    state = load_file(str(path))
    own = _saved_keys(model)
    missing, unexpected = own - set(state), set(state) - own
    if strict and (missing or unexpected):
        raise CvitkitError(
            f"{path}: adapter state does not match the model (missing {sorted(missing)[:3]}, unexpected "
            f"{sorted(unexpected)[:3]}). It was saved from a differently configured method or model; "
            "start the run again with --force or use the matching config."
        )
    model.load_state_dict(state, strict=False)


def count_adapter_parameters(model: torch.nn.Module) -> dict[str, int]:
    """Adapter parameters in total and those trainable now (frozen experts excluded); a trained vision
    tower or output head counts with them."""
    total = trainable = 0
    keys = _saved_keys(model)
    for name, p in model.named_parameters():
        if name in keys:
            total += p.numel()
            trainable += p.numel() if p.requires_grad else 0
    return {"adapter_total": total, "adapter_trainable": trainable}
