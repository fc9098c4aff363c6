"""MoELoRA as in the CoIN release: the LoRA rank split across experts mixed by a dense token router.

.. math:: h = W_0 x + s \\sum_{i=1}^{E} \\mathrm{softmax}(W_r x)_i\\, B_i A_i x,\\qquad s = \\alpha / r

with :math:`r` the *total* rank (each expert has rank r/E), :math:`A_i \\sim \\mathcal{N}(0, 0.01^2)`,
:math:`B_i = 0`, and one bias-free router per adapted linear, shared by all tasks and trained
throughout (no top-k, no load-balancing loss). Paper scale (CoIN): E = 8, r = 128, α = 256.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from cvitkit.adapters import add_mixture, mixture_layers
from cvitkit.config import option
from cvitkit.methods.base import Method, MethodConfig, register_method
from cvitkit.routers import RoutingContext


@dataclass
class MoELoRAConfig(MethodConfig):
    n_experts: int = option(8, help="Experts per adapted layer (CoIN: 8; StrCVIT: 4).")

    mini_preset: ClassVar[dict] = {"n_experts": 8, "rank": 32, "alpha": 64}


@register_method
class MoELoRA(Method):
    name = "moelora"
    config_class = MoELoRAConfig
    router = "dense_softmax"

    def mixture_spec(self) -> dict:
        return {"n_experts": self.config.n_experts, "router": self.router, "a_init_std": 0.01}

    def setup(self, model, processor):
        c = self.config
        self.context = RoutingContext()
        model = add_mixture(model, c.rank, c.alpha, c.dropout, self.mixture_spec(), c.targets,
                            train_projector=c.train_projector, routing_context=self.context)
        return super().setup(model, processor)

    def prepare_batch(self, batch, training):
        self.context.reset_batch()
        return super().prepare_batch(batch, training)

    def statistics(self):
        """Mean gate mass per expert and layer, recorded during the last evaluation."""
        stats = self.context.pop_stats()
        return {"expert_usage": {k: (v / v.sum()).tolist() for k, v in stats.items()}} if stats else {}

    def layers(self):
        return mixture_layers(self.model)
