"""MoELoRA's router (CoIN): a bias-free linear map of each token to expert logits, dense softmax."""

from __future__ import annotations

import torch
from torch import nn

from cvitkit.routers.registry import register_router


@register_router("dense_softmax")
class DenseSoftmaxRouter(nn.Module):
    """Token-wise gates :math:`g(x) = \\mathrm{softmax}(W_r x)`, every expert used (no top-k).

    Parameters
    ----------
    in_features : width of the adapted layer's input.
    n_experts : number of experts E; ``W_r`` is ``E × in_features`` without bias.
    """

    def __init__(self, in_features: int, n_experts: int, **_):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_experts, in_features))
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)  # nn.Linear's default, as in the CoIN release

    def forward(self, x: torch.Tensor, ctx, layer_name: str = "") -> torch.Tensor:
        gates = torch.softmax(x @ self.weight.t(), dim=-1)
        if ctx is not None and ctx.record_stats:
            ctx.add_stats(layer_name, gates.reshape(-1, gates.shape[-1]).sum(0))
        return gates
