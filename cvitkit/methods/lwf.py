"""LwF: LoRA-FT plus distillation from the previous stage's model on the current task's inputs.

.. math:: \\mathcal{L} = \\mathcal{L}_{LM} + \\lambda\\,T^2\\,\\mathrm{KL}\\big(\\mathrm{softmax}(z^{old}/T)\\,\\Vert\\,
          \\mathrm{softmax}(z^{new}/T)\\big)

token-wise over the supervised (answer) positions, averaged over them. The teacher is the adapter
(and projector) as it was at the end of the previous experience: a frozen copy of those weights is
swapped in for one extra forward pass per step, in eval mode (no dropout) and without gradients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from cvitkit.adapters.lora import PROJECTOR
from cvitkit.config import option
from cvitkit.lm_loss import answer_logits
from cvitkit.methods.base import register_method
from cvitkit.methods.lora_ft import LoraFT, LoraFTConfig


@dataclass
class LwFConfig(LoraFTConfig):
    lwf_lambda: float = option(1.0, help="Weight of the distillation term (not stated by BranchLoRA; standard 1).")
    temperature: float = option(2.0, help="Distillation temperature T.")

    mini_preset: ClassVar[dict] = {"lwf_lambda": 1.0, "temperature": 2.0}


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """:math:`T^2\\,\\mathrm{KL}(p^{old}_T \\Vert p^{new}_T)` averaged over the rows given: the logits at the
    positions whose next token is supervised, ``(n_supervised, vocab)`` (:func:`cvitkit.lm_loss.answer_logits`)."""
    if student_logits.numel() == 0:
        return student_logits.sum() * 0
    s, t = student_logits / temperature, teacher_logits / temperature
    kl = F.kl_div(F.log_softmax(s, -1), F.log_softmax(t, -1), log_target=True, reduction="batchmean")
    return kl * temperature ** 2


@register_method
class LwF(LoraFT):
    name = "lwf"
    config_class = LwFConfig

    def setup(self, model, processor):
        model = super().setup(model, processor)
        self.teacher_state: dict[str, torch.Tensor] | None = None
        return model

    def _snapshot(self) -> dict[str, torch.Tensor]:
        return {n: p.detach().clone() for n, p in self.model.named_parameters()
                if ("lora_" in n and ".default" in n) or PROJECTOR in n}

    def _teacher_logits(self, inputs) -> torch.Tensor:
        """Swap the saved previous-stage weights in, run, swap back (one extra forward, no gradients)."""
        params = dict(self.model.named_parameters())
        current = {n: params[n].detach().clone() for n in self.teacher_state}
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                for n, t in self.teacher_state.items():
                    params[n].data.copy_(t)
                outputs = self.model(**{k: v for k, v in inputs.items() if k != "labels"})
        finally:
            with torch.no_grad():
                for n, t in current.items():
                    params[n].data.copy_(t)
            self.model.train(was_training)
        return answer_logits(outputs, inputs)

    def compute_loss(self, inputs, outputs, batch):
        loss, logs = super().compute_loss(inputs, outputs, batch)
        if self.teacher_state is not None:
            kd = distillation_loss(answer_logits(outputs, inputs), self._teacher_logits(inputs), self.config.temperature)
            loss = loss + self.config.lwf_lambda * kd
            logs["lwf"] = kd.item()
        return loss, logs

    def after_experience(self, experience, records):
        self.teacher_state = self._snapshot()

    def state(self):
        return ({f"teacher/{n}": t for n, t in self.teacher_state.items()} if self.teacher_state else {}), {}

    def load_state(self, tensors, meta):
        teacher = {k[len("teacher/"):]: v for k, v in tensors.items() if k.startswith("teacher/")}
        self.teacher_state = teacher or None
