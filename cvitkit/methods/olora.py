"""O-LoRA: a new LoRA per task in a subspace orthogonal to the earlier tasks' LoRAs.

After task t the adapted layer computes :math:`h = W_0 x + s\\sum_{i\\le t} B_i A_i x` (all task
LoRAs active and summed, earlier ones frozen; no task id at test time). Training task t adds

.. math:: \\lambda_1 \\sum_{i<t} \\lVert A_i A_t^\\top \\rVert_F^2 + \\lambda_2 \\lVert \\theta_t \\rVert_2^2

summed over adapted layers: the orthogonality of the down-projections' row spaces (input directions)
and an optional L2 term on the new LoRA. Each task LoRA is a named peft adapter ``task_<k>``. In a
stream (no task boundaries) each chunk gets its own LoRA, which is how the kit applies it there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from cvitkit.adapters import add_lora
from cvitkit.config import option
from cvitkit.methods.base import Method, MethodConfig, register_method


@dataclass
class OLoRAConfig(MethodConfig):
    rank: int = option(32, help="Rank of each task's LoRA (MCITlib: 16 on UCIT, 32 on DCL).")
    alpha: float = option(64, help="LoRA alpha (2·rank).")
    lambda_orth: float = option(0.5, help="Weight lambda_1 of the orthogonality term.")
    lambda_l2: float = option(0.0, help="Weight lambda_2 of the L2 term on the new LoRA.")

    mini_preset: ClassVar[dict] = {"rank": 4, "alpha": 8, "lambda_orth": 0.5}


def orthogonality_loss(old_As: list[torch.Tensor], new_A: torch.Tensor) -> torch.Tensor:
    """:math:`\\sum_i \\lVert A_i A_t^\\top \\rVert_F^2` for one layer (zero when the row spaces are orthogonal)."""
    total = new_A.sum() * 0
    for A in old_As:
        total = total + (A.detach() @ new_A.t()).pow(2).sum()
    return total


@register_method
class OLoRA(Method):
    name = "olora"
    config_class = OLoRAConfig

    def setup(self, model, processor):
        self.adapters: list[str] = []
        self._base_model = model
        return super().setup(model, processor)

    def _add_task_adapter(self) -> str:
        c = self.config
        name = f"task_{len(self.adapters)}"
        target = self.model if self.adapters else self._base_model
        self.model = add_lora(target, c.rank, c.alpha, c.dropout, c.targets, adapter_name=name,
                              train_projector=c.train_projector)
        self.adapters.append(name)
        self.model.base_model.set_adapter(self.adapters)  # all active: outputs summed
        for old in self.adapters[:-1]:
            self.model.set_requires_grad(old, requires_grad=False)
        return name

    def before_experience(self, experience):
        super().before_experience(experience)
        self._add_task_adapter()

    def prepare_for_resume(self, finished):
        for _ in finished:
            self._add_task_adapter()
        for name in self.adapters:
            self.model.set_requires_grad(name, requires_grad=False)

    def _lora_layers(self):
        return [m for m in self.model.modules() if hasattr(m, "lora_A") and hasattr(m, "scaling")
                and isinstance(getattr(m, "lora_A"), torch.nn.ModuleDict)]

    def compute_loss(self, inputs, outputs, batch):
        loss, logs = super().compute_loss(inputs, outputs, batch)
        current, old = self.adapters[-1], self.adapters[:-1]
        orth = l2 = 0
        for layer in self._lora_layers():
            if current not in layer.lora_A:
                continue
            new_A = layer.lora_A[current].weight
            orth = orth + orthogonality_loss([layer.lora_A[o].weight for o in old if o in layer.lora_A], new_A)
            if self.config.lambda_l2:
                l2 = l2 + new_A.pow(2).sum() + layer.lora_B[current].weight.pow(2).sum()
        if old:
            loss = loss + self.config.lambda_orth * orth
            logs["orth"] = float(orth.detach()) if torch.is_tensor(orth) else float(orth)
        if self.config.lambda_l2:
            loss = loss + self.config.lambda_l2 * l2
        return loss, logs

    def state(self):
        return {}, {"adapters": list(self.adapters)}
