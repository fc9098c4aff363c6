"""LoRA-FT: one LoRA adapter (and the projector) trained on task after task — the forgetting baseline.

Stage t starts from stage t−1's adapter; nothing protects old tasks. Output of an adapted layer:
:math:`h = W_0 x + \\frac{\\alpha}{r} B A x`, A Kaiming-uniform and B = 0 at the start (peft's init).
"""

from __future__ import annotations

from dataclasses import dataclass

from cvitkit.adapters import add_lora
from cvitkit.methods.base import Method, MethodConfig, register_method


@dataclass
class LoraFTConfig(MethodConfig):
    """Sequential LoRA fine-tuning (paper scale: rank 128, alpha 256 as in MLLM-CL's Finetune-CL)."""


@register_method
class LoraFT(Method):
    name = "lora_ft"
    config_class = LoraFTConfig

    def setup(self, model, processor):
        c = self.config
        model = add_lora(model, c.rank, c.alpha, c.dropout, c.targets, train_projector=c.train_projector)
        return super().setup(model, processor)
