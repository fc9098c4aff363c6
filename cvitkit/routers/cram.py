"""CRAM's two routing levels: semantic pools from instruction text, centroid RBF weights from images.

Level 1 — **semantic pools** ("format isolation"). A batch's text vector is
:math:`t = \\mathrm{LayerNorm}(\\frac1B\\sum_b \\tau_b)` (parameter-free LayerNorm of the mean per-sample
instruction feature). At the first batch of a task, with G existing pools and cosine similarities
:math:`s_g = \\cos(t, m_g)` to their prototypes (CRAM reference §2.3):

* G = 0: open pool 0;
* G = 1: join it if :math:`s_1 >` ``join_threshold`` (0.8), else open a new pool (if G < G_max);
* G ≥ 2: with :math:`s_{(1)} \\ge s_{(2)}` the two largest, join the best pool if
  :math:`s_{(1)} - s_{(2)} > \\theta` (0.1), else open a new pool (if G < G_max), else join the best.

An ambiguous match therefore opens a *new* pool. Prototypes are running means of every training batch's
:math:`t` of the pool's tasks; inference picks :math:`\\arg\\max_g \\cos(t, m_g)` per batch.

Level 2 — **centroid routing** inside the pool ("visual reuse"): with the batch-mean image feature
:math:`c` and a layer's expert centroids :math:`\\mu_k`,

.. math:: \\pi_k = \\mathrm{softmax}_{k\\in P}\\Big(-\\frac{\\lVert c-\\mu_k\\rVert^2}{2\\sigma^2}\\Big)

with no top-k, noise or balancing loss; ``routing="uniform"`` (the ``no_centroid`` ablation) gives every
pool expert :math:`1/|P|`. The centroid tables live in :class:`CentroidRouter`, one per adapted layer
(registered as ``cram_centroid``), one parameter per expert slot so that old centroids can be frozen
honestly (``requires_grad=False``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from cvitkit.routers.registry import register_router

ROUTING_MODES = ("centroid_rbf", "uniform")


def rbf_logits(c: torch.Tensor, centroids: torch.Tensor, sigma: float) -> torch.Tensor:
    """:math:`-\\lVert c-\\mu_k\\rVert^2 / 2\\sigma^2` for ``c`` (..., D) and ``centroids`` (K, D) → (..., K)."""
    d2 = (c.unsqueeze(-2) - centroids).pow(2).sum(-1)
    return -d2 / (2.0 * sigma ** 2)


def rbf_weights(c: torch.Tensor, centroids: torch.Tensor, sigma: float, mode: str = "centroid_rbf") -> torch.Tensor:
    """Routing weights over the K given centroids (softmax of :func:`rbf_logits`, or uniform)."""
    if mode == "uniform":
        return torch.full((*c.shape[:-1], centroids.shape[0]), 1.0 / centroids.shape[0], device=c.device,
                          dtype=centroids.dtype)
    return torch.softmax(rbf_logits(c, centroids, sigma), dim=-1)


def text_vector(per_sample: torch.Tensor) -> torch.Tensor:
    """Batch text vector: parameter-free LayerNorm of the mean per-sample feature (reference §2.2)."""
    mean = per_sample.float().mean(0)
    return F.layer_norm(mean, mean.shape)


@register_router("cram_centroid")
class CentroidRouter(nn.Module):
    """One layer's visual centroid table, ``max_slots`` parameters of shape (feature_dim,).

    ``forward`` reads the pool and the batch image feature from the routing context's ``cram`` extra
    (a :class:`cvitkit.adapters.cram.CramState`) and returns the weights over that pool's slots.
    """

    def __init__(self, max_slots: int, feature_dim: int, sigma: float = 2.0, routing: str = "centroid_rbf", **_):
        super().__init__()
        if routing not in ROUTING_MODES:
            raise ValueError(f"CRAM routing must be one of {ROUTING_MODES}, got {routing!r}")
        self.sigma, self.routing = float(sigma), routing
        self.centroids = nn.ParameterList([nn.Parameter(torch.zeros(feature_dim)) for _ in range(max_slots)])

    def table(self, slots: list[int]) -> torch.Tensor:
        return torch.stack([self.centroids[k] for k in slots])

    def weights(self, feature: torch.Tensor | None, slots: list[int]) -> torch.Tensor:
        """Weights (…, K) over ``slots`` for a batch feature (D,) or per-sample features (B, D)."""
        table = self.table(slots)
        if feature is None:  # a text-only batch has no image to route on: every pool expert counts equally
            return torch.full((len(slots),), 1.0 / len(slots), device=table.device, dtype=table.dtype)
        return rbf_weights(feature.to(table.dtype), table, self.sigma, self.routing)

    def forward(self, x, ctx, layer_name: str = "") -> torch.Tensor:
        state = ctx.extras["cram"]
        return self.weights(state.batch_feature, state.pool_slots)


@dataclass
class PoolDecision:
    pool: int
    rule: str
    similarities: list[float] = field(default_factory=list)


class SemanticPools:
    """Level-1 pools: text prototypes (running means), member tasks and their expert slots."""

    def __init__(self, max_groups: int, delta_threshold: float = 0.1, join_threshold: float = 0.8):
        self.max_groups, self.delta_threshold, self.join_threshold = max_groups, delta_threshold, join_threshold
        self.prototypes: list[torch.Tensor] = []
        self.counts: list[int] = []
        self.tasks: list[list[str]] = []
        self.slots: list[list[int]] = []

    def __len__(self) -> int:
        return len(self.prototypes)

    def similarities(self, t: torch.Tensor) -> torch.Tensor:
        if not self.prototypes:
            return torch.zeros(0)
        protos = torch.stack(self.prototypes).to(t.device)
        return F.cosine_similarity(t.float().unsqueeze(0), protos.float(), dim=-1)

    def decide(self, t: torch.Tensor) -> PoolDecision:
        """Which pool a new task's first batch joins (the rules of the module docstring)."""
        sims = self.similarities(t)
        G, room = len(self), len(self) < self.max_groups
        listed = [round(float(s), 6) for s in sims]
        if G == 0:
            return PoolDecision(0, "first pool", listed)
        if G == 1:
            if sims[0] > self.join_threshold:
                return PoolDecision(0, f"cos {float(sims[0]):.3f} > {self.join_threshold}", listed)
            return PoolDecision(1 if room else 0, "new pool (cos below join threshold)" if room
                                else "pool cap reached: join the only pool", listed)
        top = sims.topk(2).values
        best = int(sims.argmax())
        if float(top[0] - top[1]) > self.delta_threshold:
            return PoolDecision(best, f"margin {float(top[0] - top[1]):.3f} > {self.delta_threshold}", listed)
        if room:
            return PoolDecision(G, "new pool (ambiguous margin)", listed)
        return PoolDecision(best, "pool cap reached: join the best pool", listed)

    def join(self, pool: int, task: str, slot: int) -> None:
        if pool == len(self):
            self.prototypes.append(None)  # filled by the first update
            self.counts.append(0)
            self.tasks.append([])
            self.slots.append([])
        self.tasks[pool].append(task)
        self.slots[pool].append(slot)

    def update(self, pool: int, t: torch.Tensor) -> None:
        """Running mean :math:`m \\leftarrow (n m + t)/(n+1)`."""
        t = t.detach().float().cpu()
        n = self.counts[pool]
        self.prototypes[pool] = t.clone() if n == 0 else (n * self.prototypes[pool] + t) / (n + 1)
        self.counts[pool] = n + 1

    def route(self, t: torch.Tensor) -> int:
        """Inference: the pool whose prototype is most cosine-similar (pool 0 if there is one)."""
        ready = [g for g, p in enumerate(self.prototypes) if p is not None]
        if len(ready) <= 1:
            return ready[0] if ready else 0
        sims = self.similarities(t)
        return int(sims.argmax())

    def pool_of_slot(self, slot: int) -> int | None:
        return next((g for g, s in enumerate(self.slots) if slot in s), None)

    # -- state --------------------------------------------------------------------------------------
    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        tensors = {"pool_prototypes": torch.stack(self.prototypes)} if self.prototypes else {}
        return tensors, {"counts": list(self.counts), "tasks": [list(t) for t in self.tasks],
                         "slots": [list(s) for s in self.slots]}

    def load(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        protos = tensors.get("pool_prototypes")
        self.prototypes = [p.clone() for p in protos] if protos is not None else []
        self.counts = list(meta.get("counts", []))
        self.tasks = [list(t) for t in meta.get("tasks", [])]
        self.slots = [list(s) for s in meta.get("slots", [])]
