"""The routing context: per-batch information that routers need besides the layer input.

A model's mixture layers share one :class:`RoutingContext`. The method fills it before each forward
pass (the instruction embedding of each sample for StrLoRA, the router index per sample for
BranchLoRA, the pooled image feature and pool for CRAM) and reads back what the layers left in it
(auxiliary losses, routing statistics). Keeping this state in one explicit object, rather than in
hidden globals, is what lets the same layers run under training, ``generate`` and 4-bit bases.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class RoutingContext:
    """Side inputs of routers for the current batch, and what routers report back."""

    #: (batch, d) per-sample text representation (StrLoRA's mean instruction embedding).
    sample_embedding: torch.Tensor | None = None
    #: (batch, d) per-sample image feature (CRAM's routing image feature).
    image_feature: torch.Tensor | None = None
    #: (batch,) integer index of the router / task each sample uses (BranchLoRA).
    task_index: torch.Tensor | None = None
    #: Method-specific extras (CRAM phase and pool, StrLoRA regulariser switch, ...).
    extras: dict[str, Any] = field(default_factory=dict)
    #: Auxiliary loss terms appended by layers during the forward pass.
    aux_losses: list[torch.Tensor] = field(default_factory=list)
    #: When True, routers add their per-expert selection mass to ``stats`` (keyed by layer name).
    record_stats: bool = False
    stats: dict[str, torch.Tensor] = field(default_factory=lambda: defaultdict(lambda: 0))

    def reset_batch(self) -> None:
        """Forget everything tied to the previous batch (call before each forward)."""
        self.sample_embedding = self.image_feature = self.task_index = None
        self.aux_losses.clear()

    def add_stats(self, layer: str, usage: torch.Tensor) -> None:
        if self.record_stats:
            self.stats[layer] = self.stats[layer] + usage.detach().float().cpu()

    def pop_stats(self) -> dict[str, torch.Tensor]:
        out = dict(self.stats)
        self.stats.clear()
        return out
