"""EWC: LoRA-FT plus a quadratic penalty that anchors parameters important for earlier tasks.

.. math:: \\mathcal{L} = \\mathcal{L}_{LM} + \\frac{\\lambda}{2} \\sum_p F_p (\\theta_p - \\theta^*_p)^2

over the trainable parameters (LoRA and projector); :math:`\\theta^*` are the values at the end of
the previous experience and :math:`F` a diagonal Fisher estimate. As in the StrCVIT release, F is
accumulated from the *training-time* gradients (squared mini-batch gradients of the LM loss, averaged
over the experience's steps) — an empirical-Fisher approximation, not the exact data Fisher. How the
Fisher of several experiences is combined is a switch (``fisher_accumulation``): ``sum`` (default,
the original EWC with one penalty per task), ``ema`` (running average with ``fisher_decay``), or
``last`` (only the latest experience).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from cvitkit.config import option
from cvitkit.errors import ConfigError
from cvitkit.methods.base import register_method
from cvitkit.methods.lora_ft import LoraFT, LoraFTConfig


@dataclass
class EWCConfig(LoraFTConfig):
    ewc_lambda: float = option(1.0, help="Penalty weight lambda (StrCVIT: --ewc_lambda 1.0).")
    fisher_accumulation: str = option("sum", help="How Fisher estimates of experiences combine: sum, ema, last.")
    fisher_decay: float = option(0.5, help="Weight of the old Fisher under fisher_accumulation: ema.")

    mini_preset: ClassVar[dict] = {"ewc_lambda": 1.0}

    def __post_init__(self):
        super().__post_init__()
        if self.fisher_accumulation not in ("sum", "ema", "last"):
            raise ConfigError(f"fisher_accumulation must be sum, ema or last, got {self.fisher_accumulation!r}.")


def ewc_penalty(params: dict[str, torch.Tensor], anchor: dict[str, torch.Tensor], fisher: dict[str, torch.Tensor],
                ewc_lambda: float) -> torch.Tensor:
    """:math:`\\frac{\\lambda}{2}\\sum_p F_p(\\theta_p-\\theta^*_p)^2` over the parameters named in ``fisher``."""
    total = None
    for name, f in fisher.items():
        term = (f * (params[name] - anchor[name]) ** 2).sum()
        total = term if total is None else total + term
    if total is None:
        return torch.zeros(())
    return 0.5 * ewc_lambda * total


@register_method
class EWC(LoraFT):
    name = "ewc"
    config_class = EWCConfig

    def setup(self, model, processor):
        model = super().setup(model, processor)
        self.fisher: dict[str, torch.Tensor] = {}
        self.anchor: dict[str, torch.Tensor] = {}
        self._grad_sq: dict[str, torch.Tensor] = {}
        self._steps = 0
        return model

    def _trainable(self) -> dict[str, torch.nn.Parameter]:
        return {n: p for n, p in self.model.named_parameters() if p.requires_grad}

    def before_experience(self, experience):
        super().before_experience(experience)
        self._grad_sq = {n: torch.zeros_like(p) for n, p in self._trainable().items()}
        self._steps = 0

    def compute_loss(self, inputs, outputs, batch):
        loss, logs = super().compute_loss(inputs, outputs, batch)
        if self.fisher:
            penalty = ewc_penalty(self._trainable(), self.anchor, self.fisher, self.config.ewc_lambda)
            loss = loss + penalty.to(loss.device)
            logs["ewc"] = penalty.item()
        return loss, logs

    def before_optimizer_step(self) -> None:
        # The Fisher estimate wants the LM loss's gradient alone; the penalty's gradient is known in
        # closed form, λ F (θ − θ*), so subtract it instead of running a second backward pass.
        lam = self.config.ewc_lambda
        for name, p in self._trainable().items():
            if p.grad is None:
                continue
            grad = p.grad.detach()
            if name in self.fisher:
                grad = grad - lam * self.fisher[name] * (p.detach() - self.anchor[name])
            self._grad_sq[name] += grad ** 2
        self._steps += 1

    def after_experience(self, experience, records):
        new = {n: g / max(self._steps, 1) for n, g in self._grad_sq.items()}
        mode = self.config.fisher_accumulation
        if not self.fisher or mode == "last":
            self.fisher = new
        elif mode == "sum":
            self.fisher = {n: self.fisher.get(n, 0) + f for n, f in new.items()}
        else:
            d = self.config.fisher_decay
            self.fisher = {n: d * self.fisher.get(n, 0) + (1 - d) * f for n, f in new.items()}
        self.anchor = {n: p.detach().clone() for n, p in self._trainable().items()}
        self._grad_sq = {}

    def state(self):
        tensors = {f"fisher/{n}": t for n, t in self.fisher.items()}
        tensors.update({f"anchor/{n}": t for n, t in self.anchor.items()})
        return tensors, {}

    def load_state(self, tensors, meta):
        self.fisher = {k[len("fisher/"):]: v for k, v in tensors.items() if k.startswith("fisher/")}
        self.anchor = {k[len("anchor/"):]: v for k, v in tensors.items() if k.startswith("anchor/")}
