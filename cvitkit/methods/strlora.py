"""StrLoRA (Che et al., arXiv 2605.16353): streaming CVIT with a two-stage routed mixture of LoRA experts.

Every adapted linear layer of the language model gets E LoRA experts sharing the total rank r
(:math:`r_e = r/E`, scaling :math:`s = \\alpha/r` with the *total* r, :math:`A_e \\sim \\mathcal{N}(0, 0.01^2)`,
:math:`B_e = 0`) and its own two-stage router (:mod:`cvitkit.routers.strlora`):

.. math:: y_i = W_0 h_i + s \\sum_{e=1}^{E} g_{i,e}\\, B_e A_e\\, \\mathrm{dropout}(h_i)

with :math:`g` the stage-2 hard top-1 inside the stage-1 top-k subset chosen from the routing text
vector :math:`\\bar t` — the mean of the LM's input word embeddings over the user text (``routing_ids``),
detached, the same for every layer. The loss is the answer-token cross-entropy plus, from chunk 2, the
routing-stability regulariser :math:`\\frac{1}{|\\mathcal{L}|}\\sum_{l}\\lambda\\,\\overline{\\mathrm{KL}}^{(l)}`
(KL from the EMA copy of each layer's stage-2 router, averaged over positions, then over layers).

Schedule (release, InternVL3.5 scripts): chunk 1 at ``lr`` with a cosine schedule and 5 % warm-up; chunks
≥ 2 at ``lr · later_lr_factor`` (1e-4 → 2e-5), constant; the projector at ``projector_lr`` in every chunk;
all routing parameters frozen from chunk :math:`\\lceil 0.16\\,N\\rceil + 1` (chunk 5 of 25,
``--freeze_attn``), after which the regulariser has nothing left to act on and is skipped. The method never
reads task identity: on a task-incremental suite each task is just the next chunk.

Provenance and the choices made where the reference (``reference/methods/strlora.md``) is open:

* **Stage-1 gradient** (``stage1_gate``): the released layer uses the stage-1 vector only as a 0/1 mask
  when stage 2 is on, so its :math:`W_r` never receives a gradient and stays random. The default
  ``straight_through`` keeps the release's forward values and trains :math:`W_r` through a
  straight-through gate (equation in :mod:`cvitkit.routers.strlora`); ``mask`` is the release's behaviour.
* **EMA start**: the release creates the EMA only when λ > 0 (chunk ≥ 2) and initialises it from the
  loaded adapter when no EMA file exists; the kit therefore copies the live stage-2 router into the EMA
  at the start of the first chunk with the regulariser and updates it after every optimizer step from
  then on (persistent buffers: checkpointed with the adapter, carried across chunks and resumes).
* **β at mini scale**: 0.99 (reference §5.2: a mini chunk has ~13 optimizer steps, and β = 0.999 would
  leave the teacher at the chunk-1 router for the whole stream); 0.999 at paper scale.
* **Padding**: ``include_padding=True`` averages :math:`\\bar t` over the right-padded batch, pads included,
  as the release does (pitfall 3), so a sample's routing depends slightly on its batch; ``False``
  averages over real tokens only.
* **Positions**: stage 2 and the KL run on every position of the sequence (image, text and padding), as
  in the release; the KL mean is over batch × sequence.
* **Without stage 2** (``stage2=False``) the gates are the stage-1 straight-through weights
  :math:`\\tilde p` for every token (the release's ``--subtopk 0``); there is no stage-2 router and thus no
  regulariser. ``attn_proj_dim <= 0`` keeps stage 2 but uses the release's linear token router.
* **Without stage 1** (``stage1=False``, or top_k ≥ E): every expert is selectable and no :math:`W_r` is built.
* Expert usage (statistics) counts the stage-2 selections of every position of every forward pass during
  evaluation (prompt and generated tokens), per layer and per evaluated task (evaluation batches hold one
  task; the task name is read for these statistics only, never for routing or training).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from cvitkit.adapters import add_mixture, mixture_layers
from cvitkit.config import option
from cvitkit.errors import ConfigError
from cvitkit.methods.base import Method, MethodConfig, register_method
from cvitkit.routers import RoutingContext
from cvitkit.routers.features import instruction_embedding
from cvitkit.routers.strlora import STAGE1_GATES, STAGE1_SUFFIX


@dataclass
class StrLoRAConfig(MethodConfig):
    """StrLoRA hyper-parameters; defaults are the release's InternVL3.5-8B scripts."""

    rank: int = option(64, help="Total LoRA rank r, split over the experts (r_e = r / E).")
    alpha: float = option(128, help="LoRA alpha; scaling alpha / r with the total rank (= 2).")
    lr: float = option(1e-4, help="Learning rate of experts and routers in chunk 1.")
    projector_lr: float = option(1e-5, help="Projector learning rate (every chunk).")
    warmup_ratio: float = option(0.05, help="Warm-up fraction of chunk 1's cosine schedule.")
    n_experts: int = option(4, help="Experts E per adapted layer (--expert_num).")
    top_k: int = option(2, help="Stage-1 subset size k (--topk).")
    sub_top_k: int = option(1, help="Stage-2 hard top-k' inside the subset (--subtopk); k' >= k: soft mixture.")
    attn_proj_dim: int = option(64, help="D of the cross-modal attention router; <= 0: linear token router.")
    stage1: bool = option(True, help="Stage 1 (task-aware expert subset); False: every expert selectable.")
    stage2: bool = option(True, help="Stage 2 (token-wise weighting); False: stage-1 weights for every token.")
    stage1_gate: str = option("straight_through", help="How stage 1 enters the gates: straight_through (W_r "
                                                       "trained, forward as the release), product, or mask "
                                                       "(release: W_r gets no gradient).")
    include_padding: bool = option(True, help="Average the routing text embedding over pads too (release).")
    distill_lambda: float = option(0.1, help="Weight lambda of the EMA routing-stability KL (0 disables it).")
    ema_beta: float = option(0.999, help="EMA decay beta of the stage-2 router copy.")
    distill_tau: float = option(1.0, help="KL temperature tau.")
    distill_from_chunk: int = option(2, help="First chunk (1-based) with the regulariser.")
    later_lr_factor: float = option(0.2, help="lr factor of chunks >= 2 (release: 1e-4 -> 2e-5).")
    later_schedule: str = option("constant", help="Schedule of chunks >= 2 (release: constant, no warm-up).")
    router_freeze: bool = option(True, help="Freeze every routing parameter from chunk ceil(f N) + 1.")
    router_freeze_fraction: float = option(0.16, help="f: routers frozen from chunk ceil(f N) + 1 (5 of 25).")

    mini_preset: ClassVar[dict] = {"n_experts": 4, "rank": 32, "alpha": 64, "attn_proj_dim": 16, "ema_beta": 0.99,
                                   "lr": 1e-3, "projector_lr": 1e-4, "warmup_ratio": 0.05}

    def __post_init__(self):
        super().__post_init__()
        if self.stage1_gate not in STAGE1_GATES:
            raise ConfigError(f"stage1_gate must be one of {STAGE1_GATES}, got {self.stage1_gate!r}.")
        if self.later_schedule not in ("cosine", "constant"):
            raise ConfigError(f"later_schedule must be cosine or constant, got {self.later_schedule!r}.")
        if self.rank % self.n_experts:
            raise ConfigError(f"rank {self.rank} must be divisible by n_experts {self.n_experts}.")
        if not 0 <= self.ema_beta < 1 or self.distill_lambda < 0 or self.distill_tau <= 0:
            raise ConfigError("need 0 <= ema_beta < 1, distill_lambda >= 0 and distill_tau > 0.")
        if self.top_k < 1 or self.sub_top_k < 1:
            raise ConfigError("top_k and sub_top_k must be at least 1.")


def router_freeze_chunk(n_chunks: int, fraction: float = 0.16) -> int:
    """First frozen chunk (1-based): :math:`\\lceil f N\\rceil + 1` — 5 of 25, 4 of 15, 5 of 20."""
    return math.ceil(round(fraction * n_chunks, 9)) + 1


def router_parameter_count(d_in: int, text_dim: int, c: StrLoRAConfig) -> int:
    """Routing parameters of one layer: :math:`E d_{te}` (W_r, where built) + :math:`D(d_{in}+d_{te}) + ED`
    (attention) or :math:`E d_{in}` (linear token router)."""
    E, D = c.n_experts, c.attn_proj_dim
    sparse = c.stage1 and c.top_k < E
    total = E * text_dim if (sparse or not c.stage2) else 0
    if c.stage2:
        total += D * (d_in + text_dim) + E * D if D > 0 else E * d_in
    return total


def parameter_count(layer_shapes: list[tuple[int, int]], text_dim: int, c: StrLoRAConfig,
                    routers_frozen: bool = False) -> dict[str, int]:
    """Closed-form adapter parameters (projector excluded) for layers of shape (d_in, d_out).

    Experts: :math:`r(d_{in} + d_{out})` per layer (E experts of rank r/E); routers: see
    :func:`router_parameter_count`. ``trainable`` drops the routers once they are frozen.
    """
    experts = sum(c.rank * (d_in + d_out) for d_in, d_out in layer_shapes)
    routers = sum(router_parameter_count(d_in, text_dim, c) for d_in, _ in layer_shapes)
    return {"experts": experts, "routers": routers, "total": experts + routers,
            "trainable": experts + (0 if routers_frozen else routers)}


@register_method
class StrLoRA(Method):
    name = "strlora"
    config_class = StrLoRAConfig
    protocols = ("stream", "task_incremental")

    def mixture_spec(self, text_dim: int) -> dict:
        c = self.config
        kwargs = {"text_dim": text_dim, "top_k": c.top_k, "sub_top_k": c.sub_top_k, "attn_proj_dim": c.attn_proj_dim,
                  "stage1": c.stage1, "stage2": c.stage2, "stage1_gate": c.stage1_gate,
                  "ema": c.distill_lambda > 0, "distill_tau": c.distill_tau}
        return {"n_experts": c.n_experts, "router": "strlora", "router_kwargs": kwargs, "a_init_std": 0.01}

    def setup(self, model, processor):
        c = self.config
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        self.text_dim = base.get_input_embeddings().embedding_dim
        self.context = RoutingContext()
        model = add_mixture(model, c.rank, c.alpha, c.dropout, self.mixture_spec(self.text_dim), c.targets,
                            train_projector=c.train_projector, routing_context=self.context)
        self.distill_active = False
        self.routers_frozen = False
        self._reset_eval_stats()
        return super().setup(model, processor)

    # -- structure --------------------------------------------------------------------------------
    def layers(self):
        return mixture_layers(self.model)

    def routers(self):
        return [layer.lora_router["default"] for layer in self.layers()]

    def freeze_chunk(self) -> int | None:
        """First chunk (1-based) whose routers are frozen, or None (no freezing / unknown run length)."""
        if not self.config.router_freeze or not self.n_experiences:
            return None
        return router_freeze_chunk(self.n_experiences, self.config.router_freeze_fraction)

    def parameter_count(self) -> dict[str, int]:
        shapes = [(layer.in_features, layer.out_features) for layer in self.layers()]
        return parameter_count(shapes, self.text_dim, self.config, self.routers_frozen)

    # -- lifecycle --------------------------------------------------------------------------------
    def before_experience(self, experience):
        super().before_experience(experience)
        c, chunk = self.config, experience.index + 1
        first_frozen = self.freeze_chunk()
        self.routers_frozen = first_frozen is not None and chunk >= first_frozen
        for router in self.routers():
            router.requires_grad_(not self.routers_frozen)
        # Frozen routers leave the KL without a trainable parameter (the release still computes it).
        self.distill_active = (c.distill_lambda > 0 and c.stage2 and chunk >= c.distill_from_chunk
                               and not self.routers_frozen)
        if self.distill_active:
            for router in self.routers():
                if not bool(router.ema_ready):
                    router.reset_ema()
        self._reset_eval_stats()

    def param_groups(self):
        groups = super().param_groups()
        if self.experience_index > 0:
            for g in groups:
                if g["name"] == "adapter":
                    g["lr"] = self.config.lr * self.config.later_lr_factor
        return groups

    def lr_schedule(self, experience):
        if experience.index == 0:
            return self.config.schedule, self.config.warmup_ratio
        return self.config.later_schedule, 0.0

    def prepare_batch(self, batch, training):
        ctx = self.context
        ctx.reset_batch()
        ctx.sample_embedding = instruction_embedding(self.model, batch["routing_ids"], batch.get("routing_mask"),
                                                     include_padding=self.config.include_padding)
        ctx.extras["distill_lambda"] = self.config.distill_lambda if (training and self.distill_active) else 0.0
        ctx.record_stats = not training
        return super().prepare_batch(batch, training)

    def compute_loss(self, inputs, outputs, batch):
        loss, logs = super().compute_loss(inputs, outputs, batch)
        aux = self.context.aux_losses
        if aux:
            reg = torch.stack([a.to(loss.device) for a in aux]).mean()  # already λ-weighted per layer
            loss = loss + reg
            logs["router_kl"] = reg.detach().item()
        return loss, logs

    def after_step(self):
        if self.distill_active:
            for router in self.routers():
                router.update_ema(self.config.ema_beta)

    @torch.no_grad()
    def generate(self, inputs, batch, **generate_kwargs):
        out, meta = super().generate(inputs, batch, **generate_kwargs)
        tasks = [t for t in batch.get("tasks") or [] if t is not None]
        task = tasks[0] if tasks and len(set(tasks)) == 1 else None  # statistics only, never routing
        for key, value in self.context.pop_stats().items():
            self._eval_stats[key] = self._eval_stats.get(key, 0) + value
            if task is not None:
                per_task = self._task_stats.setdefault(task, {})
                per_task[key] = per_task.get(key, 0) + value
        return out, meta

    # -- statistics and state ---------------------------------------------------------------------
    def _reset_eval_stats(self):
        self._eval_stats: dict[str, torch.Tensor] = {}
        self._task_stats: dict[str, dict[str, torch.Tensor]] = {}

    @staticmethod
    def _fractions(stats: dict, stage1: bool) -> dict[str, list[float]]:
        out = {}
        for key, v in stats.items():
            if key.endswith(STAGE1_SUFFIX) == stage1 and float(v.sum()) > 0:
                out[key[: -len(STAGE1_SUFFIX)] if stage1 else key] = (v / v.sum()).tolist()
        return out

    @staticmethod
    def _layer_mean(fractions: dict[str, list[float]]) -> list[float]:
        return torch.tensor(list(fractions.values())).mean(0).tolist() if fractions else []

    def statistics(self):
        """Expert usage per layer (stage-2 selections) and per task, stage-1 subsets, and the routing phase."""
        stats = {"routing": {"chunk": self.experience_index + 1, "routers_frozen": self.routers_frozen,
                             "freeze_chunk": self.freeze_chunk(), "regulariser_active": self.distill_active},
                 "parameter_count": self.parameter_count()}
        if self._eval_stats:
            stats["expert_usage"] = self._fractions(self._eval_stats, stage1=False)
            stats["stage1_usage"] = self._fractions(self._eval_stats, stage1=True)
            stats["task_expert_usage"] = {t: self._layer_mean(self._fractions(s, stage1=False))
                                          for t, s in self._task_stats.items()}
            stats["task_stage1_usage"] = {t: self._layer_mean(self._fractions(s, stage1=True))
                                          for t, s in self._task_stats.items()}
        return stats

    def state(self):
        # The EMA copies live in persistent router buffers, saved with the adapter; nothing else is learned.
        ready = [bool(r.ema_ready) for r in self.routers() if r.has_ema]
        return {}, {"ema_ready": all(ready) if ready else None, "routers_frozen": self.routers_frozen}
