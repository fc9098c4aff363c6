"""BranchLoRA's routing pieces: a bank of task-specific branch routers and the task selector.

**Router bank** (:class:`BranchRouterBank`, registry name ``"branchlora"``) — one bank inside every
adapted layer, holding one bias-free router :math:`W_r^{(t)} \\in \\mathbb{R}^{N\\times d_{in}}` per task
(an ``nn.ParameterList``; a new router is appended when a task starts, older ones are frozen). Each
sample uses the router its ``RoutingContext.task_index`` names:

.. math:: g = \\mathrm{softmax}\\big(W_r^{(t)} x_{route}\\big),\\qquad
          \\hat g_j = \\frac{g_j\\,[j \\in \\mathrm{TopK}(g, k)]}{\\sum_{l \\in \\mathrm{TopK}(g,k)} g_l}

(renormalised top-k; ``top_k`` 0 or N means the dense softmax of CoIN's MoELoRA). ``x_route`` is each
token (``granularity="token"``, default) or the sample's first real token (``"first_token"``, one
decision per sample; the routing decision made at the prompt's forward pass is reused for every
generated token). The gradient reaches the kept probabilities through the renormalisation (no
straight-through estimator is needed: the mask is piecewise constant and the kept weights are
differentiable).

Routing statistics go to the context: gate mass per branch for evaluation (``record_stats``) and, while
``extras["track_usage"]`` is set, the usage the flexible tuning-freezing step reads
(``extras["usage"][layer]``), measured on real tokens only (``extras["token_mask"]``).

**Task selector** (:class:`TaskSelector`) — per task an image key and a text key, trained with the
cosine alignment loss :math:`\\mathcal{L}_{align} = \\overline{1-\\cos(e_{img}, k^{(t)}_{img})} +
\\overline{1-\\cos(e_{txt}, k^{(t)}_{txt})}` (batch means). At inference each sample's task is
:math:`\\hat t = \\arg\\max_t\\ \\cos(e_{img}, k^{(t)}_{img}) + \\cos(e_{txt}, k^{(t)}_{txt})` (sum of the two
cosines: the reference leaves the combination open and the sum is its simplest choice; a text-only
sample uses the text cosine alone).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from cvitkit.errors import ConfigError
from cvitkit.routers.registry import register_router
from cvitkit.routers.topk import renormalised_topk

GRANULARITIES = ("token", "first_token")


def sparse_gates(probs: torch.Tensor, top_k: int) -> torch.Tensor:
    """Renormalised top-k of ``probs`` along the last axis; dense when ``top_k`` is 0 or ≥ the width."""
    if top_k <= 0 or top_k >= probs.shape[-1]:
        return probs
    return renormalised_topk(probs, top_k)


@register_router("branchlora")
class BranchRouterBank(nn.Module):
    """Task-specific routers over N branches (see the module docstring).

    Parameters
    ----------
    in_features : width of the adapted layer's input.
    n_experts : number of branches N.
    top_k : branches kept per routing decision (0 = dense softmax).
    granularity : ``"token"`` or ``"first_token"``.
    """

    def __init__(self, in_features: int, n_experts: int, top_k: int = 2, granularity: str = "token", **_):
        super().__init__()
        if granularity not in GRANULARITIES:
            raise ConfigError(f"route_granularity must be one of {GRANULARITIES}, got {granularity!r}.")
        self.in_features, self.n_experts, self.top_k, self.granularity = in_features, n_experts, top_k, granularity
        self.weights = nn.ParameterList([self._new_weight()])

    def _new_weight(self) -> nn.Parameter:
        w = nn.Parameter(torch.empty(self.n_experts, self.in_features))
        nn.init.kaiming_uniform_(w, a=math.sqrt(5))  # nn.Linear's default, as CoIN's router
        return w

    @property
    def n_routers(self) -> int:
        return len(self.weights)

    def add_router(self, init: str = "random") -> int:
        """Append a router (``init``: ``random`` or ``copy`` of the latest); returns its index."""
        w = self._new_weight().to(self.weights[-1].device)
        if init == "copy":
            with torch.no_grad():
                w.copy_(self.weights[-1])
        self.weights.append(w)
        return len(self.weights) - 1

    def set_trainable(self, index: int | None) -> None:
        """Only router ``index`` trains (None: none does); frozen routers stay usable."""
        for i, w in enumerate(self.weights):
            w.requires_grad_(i == index)

    def logits(self, x: torch.Tensor, ctx) -> torch.Tensor:
        """Router logits for ``x`` of shape (b, t, d) or (b, d), picking each sample's router."""
        fixed = None if ctx is None else ctx.extras.get("branch_router")
        index = None if ctx is None else ctx.task_index
        if fixed is not None or index is None or self.n_routers == 1:
            w = self.weights[min(fixed if fixed is not None else self.n_routers - 1, self.n_routers - 1)]
            return x @ w.to(x.dtype).t()
        index = index.to(x.device).clamp_max(self.n_routers - 1)
        w = torch.stack(list(self.weights)).to(x.dtype)[index]  # (b, N, d): each sample's router
        if x.dim() == 2:
            return torch.einsum("bd,bnd->bn", x, w)
        return torch.einsum("btd,bnd->btn", x, w)

    def forward(self, x: torch.Tensor, ctx, layer_name: str = "") -> torch.Tensor:
        if self.granularity == "first_token":
            gates = self._first_token_gates(x, ctx, layer_name)
        else:
            gates = sparse_gates(torch.softmax(self.logits(x, ctx).float(), dim=-1).to(x.dtype), self.top_k)
        if ctx is not None:
            self._record(gates, ctx, layer_name)
        return gates

    def _first_token_gates(self, x, ctx, layer_name):
        cache = None if ctx is None else ctx.extras.setdefault("first_gates", {})
        if cache is not None and x.shape[1] == 1 and layer_name in cache and cache[layer_name].shape[0] == x.shape[0]:
            return cache[layer_name]  # a generation step: keep the decision made on the prompt
        first = None if ctx is None else ctx.extras.get("first_index")
        if first is None or first.shape[0] != x.shape[0]:
            first = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        x0 = x[torch.arange(x.shape[0], device=x.device), first.to(x.device)]
        gates = sparse_gates(torch.softmax(self.logits(x0, ctx).float(), dim=-1).to(x.dtype), self.top_k).unsqueeze(1)
        if cache is not None and not torch.is_grad_enabled():
            cache[layer_name] = gates
        return gates

    def _record(self, gates: torch.Tensor, ctx, layer_name: str) -> None:
        if not (ctx.record_stats or ctx.extras.get("track_usage")):
            return
        g = gates.detach().float()
        mask = ctx.extras.get("token_mask")
        if g.shape[1] > 1 and mask is not None and tuple(mask.shape) == tuple(g.shape[:2]):
            g = g * mask.to(g.device, g.dtype).unsqueeze(-1)  # padding tokens do not count
        mass = g.reshape(-1, g.shape[-1]).sum(0)
        ctx.add_stats(layer_name, mass)
        if ctx.extras.get("track_usage"):
            measure = ctx.extras.get("usage_measure", "mass")
            used = mass if measure == "mass" else (g > 0).float().reshape(-1, g.shape[-1]).sum(0)
            usage = ctx.extras.setdefault("usage", {})
            usage[layer_name] = usage.get(layer_name, 0) + used.cpu()


class TaskSelector(nn.Module):
    """Image and text keys per task, trained by cosine alignment; picks a task per sample.

    Parameters
    ----------
    image_dim, text_dim : widths of the image and text routing features.
    init_std : standard deviation of randomly initialised keys.
    """

    def __init__(self, image_dim: int, text_dim: int, init_std: float = 0.02):
        super().__init__()
        self.image_dim, self.text_dim, self.init_std = image_dim, text_dim, init_std
        self.image_keys = nn.ParameterList()
        self.text_keys = nn.ParameterList()

    def __len__(self) -> int:
        return len(self.image_keys)

    def add_task(self) -> int:
        """Append a (random) key pair for a new task; earlier keys are frozen. Returns its index."""
        device = self.image_keys[0].device if len(self) else torch.device("cpu")
        for keys, dim in ((self.image_keys, self.image_dim), (self.text_keys, self.text_dim)):
            for k in keys:
                k.requires_grad_(False)
            keys.append(nn.Parameter(torch.randn(dim, device=device) * self.init_std))
        return len(self) - 1

    @torch.no_grad()
    def init_from_features(self, task: int, image: torch.Tensor | None, text: torch.Tensor) -> None:
        """Data-dependent start: the mean direction of the task's first batch (the loss's minimiser)."""
        for keys, feats in ((self.image_keys, image), (self.text_keys, text)):
            if feats is not None:
                keys[task].copy_(F.normalize(feats.float(), dim=-1).mean(0).to(keys[task]))

    def alignment_loss(self, task: int, image: torch.Tensor | None, text: torch.Tensor | None) -> torch.Tensor:
        """Batch mean of (1 − cos) between the features and task ``task``'s keys, image plus text."""
        terms = []
        for keys, feats in ((self.image_keys, image), (self.text_keys, text)):
            if feats is not None:
                key = keys[task]
                terms.append((1 - F.cosine_similarity(feats.to(key), key.unsqueeze(0), dim=-1)).mean())
        return torch.stack(terms).sum() if terms else torch.zeros(())

    @torch.no_grad()
    def similarities(self, image: torch.Tensor | None, text: torch.Tensor | None) -> torch.Tensor:
        """(batch, tasks): cos(image, image key) + cos(text, text key) for every task."""
        total = 0
        for keys, feats in ((self.image_keys, image), (self.text_keys, text)):
            if feats is not None and len(keys):
                k = F.normalize(torch.stack(list(keys)).float(), dim=-1)
                total = total + F.normalize(feats.float().to(k.device), dim=-1) @ k.t()
        return total

    @torch.no_grad()
    def select(self, image: torch.Tensor | None, text: torch.Tensor | None) -> torch.Tensor:
        """Index of the most similar task per sample (0 when there is no key yet)."""
        n = (text if text is not None else image).shape[0]
        if not len(self):
            return torch.zeros(n, dtype=torch.long)
        return self.similarities(image, text).argmax(-1).cpu()


def choose_branches_to_freeze(usage: torch.Tensor, frozen: set[int], n_freeze: int, policy: str = "topk_of_unfrozen",
                              min_tunable: int = 0) -> list[int]:
    """Branches to freeze after a task, given each branch's usage on that task.

    * ``topk_of_unfrozen`` — the ``n_freeze`` most-used branches among the still-tunable ones;
    * ``topk_of_all`` — the ``n_freeze`` most-used branches of all; those already frozen stay frozen
      (overlap allowed, so fewer than ``n_freeze`` may be added).

    At most ``tunable − min_tunable`` new branches are frozen, so that (with ``min_tunable = k``) every
    later task still finds k tunable branches; ``min_tunable = 0`` lets the branches run out.
    Ties are broken by the lower index (deterministic).
    """
    usage = usage.float()
    n = usage.numel()
    tunable = [j for j in range(n) if j not in frozen]
    budget = max(0, len(tunable) - max(0, min_tunable))
    if policy == "topk_of_unfrozen":
        ranked = sorted(tunable, key=lambda j: (-usage[j].item(), j))[: min(n_freeze, len(tunable))]
    elif policy == "topk_of_all":
        ranked = [j for j in sorted(range(n), key=lambda j: (-usage[j].item(), j))[:n_freeze] if j not in frozen]
    else:
        raise ConfigError(f"freeze_policy must be topk_of_unfrozen or topk_of_all, got {policy!r}.")
    return sorted(ranked[:budget])


__all__ = ["BranchRouterBank", "TaskSelector", "choose_branches_to_freeze", "sparse_gates"]
