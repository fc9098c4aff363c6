"""Adapters: plain LoRA through peft, and mixture-of-LoRA-expert layers over any base linear layer."""

from cvitkit.adapters.lora import (add_lora, add_mixture, mixture_layers, set_projector_trainable,
                                  set_part_trainable)
from cvitkit.adapters.mixture import (
    MixtureLoraConfig,
    MixtureLoraLinear,
    MixtureSpec,
    mixture_delta,
    mixture_delta_loop,
)
from cvitkit.adapters.state import (
    adapter_state_dict,
    count_adapter_parameters,
    load_adapter_state,
    save_adapter_state,
)

__all__ = [
    "MixtureLoraConfig", "MixtureLoraLinear", "MixtureSpec", "add_lora", "add_mixture", "adapter_state_dict", "count_adapter_parameters",
    "load_adapter_state", "mixture_delta", "mixture_delta_loop", "mixture_layers", "save_adapter_state", "set_projector_trainable",
    "set_part_trainable",
]
