"""Mixture-of-LoRA-experts layers as a peft custom LoRA module.

One adapted linear layer :math:`W_0` gets E low-rank experts and a router:

.. math::  y = W_0 x + s \\sum_{e=1}^{E} g_e(x)\\, B_e A_e\\, \\mathrm{dropout}(x),\\qquad s = \\alpha / r

with the *total* rank :math:`r = E\\,r_e` in the scaling (the CoIN/StrCVIT convention). With a shared
trunk (BranchLoRA) all experts use one :math:`A`. The layer keeps the wrapped module as
``base_layer`` and only ever *calls* it, so the base may be a 4-bit ``bnb.nn.Linear4bit``.

The experts are computed batched, not in a Python loop: with :math:`A = [A_1; \\dots; A_E]` stacked
along the rank axis and :math:`B = [B_1, \\dots, B_E]`, the sum above equals
:math:`B\\,(\\tilde g \\odot A x)` where :math:`\\tilde g` repeats each expert's gate over its rank
columns — two matrix products, the cost of one LoRA of rank r (:func:`mixture_delta`;
:func:`mixture_delta_loop` is the per-expert reference used by tests and benchmarks).

Each expert's A and B are separate ``nn.Parameter`` objects, so freezing an expert is an honest
``requires_grad = False`` (BranchLoRA's frozen branches, CRAM's old experts).

Registration uses peft's custom-module hook (``LoraConfig._register_custom_module``), which is
experimental in peft; ``tests/test_adapters.py`` fails loudly if it moves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from peft import LoraConfig
from peft.tuners.lora import LoraLayer
from torch import nn

from cvitkit.errors import ConfigError


def mixture_delta(x: torch.Tensor, A: torch.Tensor, B: torch.Tensor, gates: torch.Tensor | None,
                  n_experts: int, shared_a: bool) -> torch.Tensor:
    """Batched mixture update :math:`\\sum_e g_e B_e A_e x` (without the scaling).

    Parameters
    ----------
    x : (..., d_in) layer input (after dropout).
    A : (E·r_e, d_in) stacked down-projections, or (r_e, d_in) when ``shared_a``.
    B : (d_out, E·r_e) stacked up-projections.
    gates : expert weights broadcastable to (..., E) — token-wise (b, t, E), sample-wise (b, 1, E) or
        batch-wise (E,) — or None for an ungated sum.
    """
    h = x @ A.t()
    if shared_a:
        h = h.unsqueeze(-2).expand(*h.shape[:-1], n_experts, h.shape[-1])
    else:
        h = h.unflatten(-1, (n_experts, -1))
    if gates is not None:
        h = h * gates.unsqueeze(-1)
    return h.flatten(-2) @ B.t()


def mixture_delta_loop(x, As, Bs, gates, shared_a: bool) -> torch.Tensor:
    """Reference implementation: one pair of matrix products per expert (slow; tests and benchmarks)."""
    out = 0
    for e, B_e in enumerate(Bs):
        A_e = As[0] if shared_a else As[e]
        term = (x @ A_e.t()) @ B_e.t()
        out = out + (term if gates is None else gates[..., e : e + 1] * term)
    return out


@dataclass
class MixtureSpec:
    """How one adapter's experts and router are laid out (serialisable)."""

    n_experts: int = 4
    shared_a: bool = False
    router: str = "dense_softmax"
    router_kwargs: dict = field(default_factory=dict)
    a_init_std: float | None = 0.01  # N(0, 0.01²) as in CoIN/StrCVIT; None: Kaiming-uniform (peft default)


@dataclass
class MixtureLoraConfig(LoraConfig):
    """A ``LoraConfig`` whose target layers become :class:`MixtureLoraLinear` (``r`` = total rank).

    A method with its own layer type subclasses this config and overrides :meth:`layer_class`.
    """

    mixture: dict = field(default_factory=dict, metadata={"help": "MixtureSpec fields (experts, router, init)."})

    def __post_init__(self):
        super().__post_init__()
        spec = self.spec
        if self.r % spec.n_experts:
            raise ConfigError(f"total rank r={self.r} must be divisible by n_experts={spec.n_experts} "
                              "(each expert gets r / n_experts).")
        # nn.Linear also matches bnb's Linear4bit (a subclass), so 4-bit bases get the same layer.
        self._register_custom_module({nn.Linear: self.layer_class()})

    @classmethod
    def layer_class(cls) -> type:
        return MixtureLoraLinear

    @property
    def spec(self) -> MixtureSpec:
        return MixtureSpec(**self.mixture)


class MixtureLoraLinear(nn.Module, LoraLayer):
    """A linear layer with a routed mixture of LoRA experts (see the module docstring)."""

    adapter_layer_names = ("lora_A", "lora_B", "lora_router")
    other_param_names = ("r", "lora_alpha", "scaling", "lora_dropout", "lora_spec")

    def __init__(self, base_layer: nn.Module, adapter_name: str, config: MixtureLoraConfig, r: int | None = None,
                 lora_alpha: float | None = None, **kwargs):
        super().__init__()
        LoraLayer.__init__(self, base_layer, ephemeral_gpu_offload=kwargs.get("ephemeral_gpu_offload", False))
        self.lora_A = nn.ModuleDict()
        self.lora_B = nn.ModuleDict()
        self.lora_router = nn.ModuleDict()
        self.lora_spec: dict[str, MixtureSpec] = {}
        self.layer_name = kwargs.get("target_name", "")
        self.routing_context = None  # a RoutingContext shared by all layers of the model (not a module)
        self._stack_cache: dict[str, tuple] = {}
        self._active_adapter = adapter_name
        self.update_layer(adapter_name, r or config.r, lora_alpha or config.lora_alpha, config=config)

    def update_layer(self, adapter_name: str, r: int, lora_alpha: float, config: MixtureLoraConfig, **kwargs):
        from cvitkit.routers.registry import build_router

        spec = config.spec
        rank = r // spec.n_experts
        self.r[adapter_name] = r
        self.lora_alpha[adapter_name] = lora_alpha
        self.scaling[adapter_name] = lora_alpha / r
        self.lora_spec[adapter_name] = spec
        self.lora_dropout[adapter_name] = nn.Dropout(config.lora_dropout) if config.lora_dropout else nn.Identity()
        n_a = 1 if spec.shared_a else spec.n_experts
        self.lora_A[adapter_name] = nn.ParameterList(
            [nn.Parameter(torch.empty(rank, self.in_features)) for _ in range(n_a)])
        self.lora_B[adapter_name] = nn.ParameterList(
            [nn.Parameter(torch.zeros(self.out_features, rank)) for _ in range(spec.n_experts)])
        for a in self.lora_A[adapter_name]:
            if spec.a_init_std is None:
                nn.init.kaiming_uniform_(a, a=math.sqrt(5))
            else:
                nn.init.normal_(a, std=spec.a_init_std)
        self.lora_router[adapter_name] = build_router(
            spec.router, in_features=self.in_features, out_features=self.out_features, n_experts=spec.n_experts,
            rank=rank, **spec.router_kwargs)
        self._move_adapter_to_device_of_base_layer(adapter_name)
        self.set_adapter(self.active_adapters)

    def stacked(self, adapter_name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(A, B) with the experts concatenated along the rank axis; cached while gradients are off."""
        As, Bs = self.lora_A[adapter_name], self.lora_B[adapter_name]
        if torch.is_grad_enabled():
            self._stack_cache.pop(adapter_name, None)
            return torch.cat(list(As), 0), torch.cat(list(Bs), 1)
        key = tuple(p._version for p in (*As, *Bs)) + tuple(p.data_ptr() for p in (*As, *Bs))
        cached = self._stack_cache.get(adapter_name)
        if cached is None or cached[0] != key:
            cached = (key, torch.cat(list(As), 0), torch.cat(list(Bs), 1))
            self._stack_cache[adapter_name] = cached
        return cached[1], cached[2]

    def adapter_delta(self, x: torch.Tensor, adapter_name: str) -> torch.Tensor:
        spec = self.lora_spec[adapter_name]
        A, B = self.stacked(adapter_name)
        x = x.to(A.dtype)
        gates = self.lora_router[adapter_name](x, self.routing_context, self.layer_name)
        delta = mixture_delta(self.lora_dropout[adapter_name](x), A, B, gates, spec.n_experts, spec.shared_a)
        return delta * self.scaling[adapter_name]

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        result = self.base_layer(x, *args, **kwargs)
        if self.disable_adapters:
            return result
        for name in self.active_adapters:
            if name in self.lora_A:
                delta = self.adapter_delta(x, name)
                if delta is not None:  # a subclass may have nothing to add yet (CRAM before its first expert)
                    result = result + delta.to(result.dtype)
        return result

    def merge(self, *args, **kwargs):
        raise NotImplementedError("a routed mixture depends on each input, so it cannot be merged into the base "
                                  "weight; keep the adapter unmerged (or use a single-LoRA method).")

    def unmerge(self, *args, **kwargs):
        return None

    def __repr__(self) -> str:
        spec = self.lora_spec.get(self.active_adapters[0]) if self.active_adapters else None
        return f"mixture_lora.{super().__repr__()}" + (f" [{spec}]" if spec else "")
