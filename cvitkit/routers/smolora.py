"""SMoLoRA's separable router: one expert for visual understanding, one for instruction following.

Each adapted layer splits its E experts into two halves. The *visual-understanding* (VU) half is
chosen from the layer's own input, averaged over the sample's prompt positions; the
*instruction-following* (IF) half from a sentence embedding of the sample's instruction:

.. math::  g^{vu} = \\mathrm{onehot}\\big(\\arg\\max\\, W_{vu}\\, \\bar x\\big),\\qquad
           g^{if} = \\mathrm{onehot}\\big(\\arg\\max\\, W_{if}\\, z_{if}\\big),\\qquad g = [g^{vu}; g^{if}]

with :math:`W_{vu} \\in \\mathbb{R}^{E/2 \\times d_{in}}` and :math:`W_{if} \\in \\mathbb{R}^{E/2 \\times d_{text}}`
bias-free. The gates are hard one-hots with no gradient path, so in the release the two routing
matrices never change from their initialisation (they get no gradient, and AdamW skips them): routing
is a fixed random projection of the input. The kit keeps them as persistent buffers, which says the
same thing plainly and saves them with the adapter.

:math:`\\bar x` is computed once per sample from the forward pass over the whole prompt (pads
excluded via the attention mask the method puts in the context) and reused for the tokens generated
after it; see :mod:`cvitkit.methods.smolora` for why.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from cvitkit.errors import ConfigError
from cvitkit.routers.features import masked_mean
from cvitkit.routers.registry import register_router
from cvitkit.routers.topk import topk_mask

#: Key of this router's per-batch state in ``RoutingContext.extras``.
STATE = "smolora"


def _linear_init(rows: int, cols: int) -> torch.Tensor:
    # nn.Linear's default initialisation: the release's gates are plain bias-free nn.Linear layers
    w = torch.empty(rows, cols)
    nn.init.kaiming_uniform_(w, a=math.sqrt(5))
    return w


@register_router("smolora_separable")
class SeparableRouter(nn.Module):
    """Gates ``(batch, 1, E)``: a one-hot over the first E/2 experts (VU) and one over the last E/2 (IF).

    Parameters
    ----------
    in_features : width of the adapted layer's input (the VU routing input).
    n_experts : E, even; E/2 experts per half.
    text_dim : width of the instruction embedding the method puts in ``ctx.sample_embedding``.
    """

    def __init__(self, in_features: int, n_experts: int, text_dim: int, **_):
        super().__init__()
        if n_experts < 2 or n_experts % 2:
            raise ConfigError(f"SMoLoRA needs an even number of experts (half VU, half IF), got {n_experts}.")
        self.half = n_experts // 2
        self.register_buffer("vu_weight", _linear_init(self.half, in_features))
        self.register_buffer("if_weight", _linear_init(self.half, text_dim))

    def forward(self, x: torch.Tensor, ctx, layer_name: str = "") -> torch.Tensor:
        if ctx is None or ctx.sample_embedding is None:
            raise ConfigError("the SMoLoRA router needs the instruction embedding in the routing context; "
                              "run the model through the smolora method's prepare_batch.")
        state = ctx.extras.setdefault(STATE, {"mask": None, "prompt_mean": {}})
        cached = state["prompt_mean"].get(layer_name)
        if cached is not None and x.shape[1] == 1:  # a generated token: keep the prompt's route
            pooled = cached
        else:
            pooled = masked_mean(x.detach().float(), state["mask"])
            state["prompt_mean"][layer_name] = pooled
        vu = topk_mask(pooled @ self.vu_weight.t(), 1)
        text = ctx.sample_embedding.to(self.if_weight)
        instr = topk_mask(text @ self.if_weight.t(), 1)
        if instr.shape[0] == 1 and vu.shape[0] > 1:
            instr = instr.expand(vu.shape[0], -1)
        gates = torch.cat([vu, instr], -1).unsqueeze(1).to(x.dtype)
        if ctx.record_stats and x.shape[1] > 1:  # one count per sample (its prompt pass), not per token
            ctx.add_stats(layer_name, gates[:, 0].sum(0))
        return gates
