"""SMoLoRA's layer: two routed halves of LoRA experts, fused per token by a learned softmax.

With the separable router's gates :math:`g` (:mod:`cvitkit.routers.smolora`; one VU and one IF expert
selected per sample) the two halves give

.. math::  u = s \\sum_{e \\le E/2} g_e B_e A_e x,\\qquad v = s \\sum_{e > E/2} g_e B_e A_e x,\\qquad s = \\alpha / r

and the layer adds their adaptive fusion, a per-token softmax over one linear score of each:

.. math::  [a_u, a_v] = \\mathrm{softmax}\\big(w_u^\\top u,\\; w_v^\\top v\\big),\\qquad
           y = W_0 x + a_u\\, u + a_v\\, v

with :math:`w_u, w_v \\in \\mathbb{R}^{d_{out}}` trained (``lora_fuse``; nn.Linear's default
initialisation, as in the release). At initialisation :math:`B = 0`, so :math:`u = v = 0` and
:math:`a_u = a_v = 1/2`. With :math:`w = 0` the fusion is a plain average of the two halves.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from cvitkit.adapters.mixture import MixtureLoraConfig, MixtureLoraLinear


def separable_delta(x: torch.Tensor, A: torch.Tensor, B: torch.Tensor, gates: torch.Tensor, n_experts: int,
                    fuse: torch.Tensor, scaling: float) -> torch.Tensor:
    """:math:`a_u u + a_v v` of the module docstring (batched: two matrix products per half).

    Parameters
    ----------
    x : (..., d_in) layer input (after dropout).
    A : (E·r_e, d_in) stacked down-projections; B : (d_out, E·r_e) stacked up-projections.
    gates : broadcastable to (..., E); the first E/2 entries gate the VU half, the rest the IF half.
    fuse : (2, d_out), the fusion scores' weights :math:`[w_u; w_v]`.
    """
    half = n_experts // 2
    h = (x @ A.t()).unflatten(-1, (n_experts, -1)) * gates.unsqueeze(-1)
    cut = half * h.shape[-1]
    u = h[..., :half, :].flatten(-2) @ B[:, :cut].t() * scaling
    v = h[..., half:, :].flatten(-2) @ B[:, cut:].t() * scaling
    weights = torch.softmax(torch.stack([u @ fuse[0], v @ fuse[1]], -1), -1)
    return weights[..., :1] * u + weights[..., 1:] * v


class SMoLoraConfig(MixtureLoraConfig):
    """A mixture config whose layers are :class:`SMoLoraLinear`."""

    @classmethod
    def layer_class(cls) -> type:
        return SMoLoraLinear


class SMoLoraLinear(MixtureLoraLinear):
    """A mixture layer with SMoLoRA's two expert halves and adaptive fusion (module docstring)."""

    adapter_layer_names = ("lora_A", "lora_B", "lora_router", "lora_fuse")

    def update_layer(self, adapter_name, r, lora_alpha, config, **kwargs):
        if not hasattr(self, "lora_fuse"):  # the parent's __init__ calls this before we can add modules
            self.lora_fuse = nn.ParameterDict()
        fuse = torch.empty(2, self.out_features)
        bound = 1 / math.sqrt(self.out_features)  # nn.Linear(d_out, 1)'s default, one per score as released
        nn.init.uniform_(fuse, -bound, bound)
        self.lora_fuse[adapter_name] = nn.Parameter(fuse)
        super().update_layer(adapter_name, r, lora_alpha, config=config, **kwargs)

    def adapter_delta(self, x: torch.Tensor, adapter_name: str) -> torch.Tensor:
        spec = self.lora_spec[adapter_name]
        A, B = self.stacked(adapter_name)
        x = x.to(A.dtype)
        gates = self.lora_router[adapter_name](x, self.routing_context, self.layer_name)
        return separable_delta(self.lora_dropout[adapter_name](x), A, B, gates, spec.n_experts,
                               self.lora_fuse[adapter_name], self.scaling[adapter_name])
