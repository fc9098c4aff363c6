"""CRAM: Centroid-Routing and Adaptive MoE for multimodal continual instruction tuning (Tang et al., 2026).

One expert per task on the LM attention projections (q, k, v, o), two-level routing without task id,
adaptive-rank experts initialised from a warm-up buffer, and an orthogonality penalty. Reconstructed
from ``/work/shared/reference/methods/cram.md`` (the authors' released code); layer equations in
:mod:`cvitkit.adapters.cram`, routing in :mod:`cvitkit.routers.cram`.

Per task τ with N optimizer steps and :math:`n_w = \\max(1, \\mathrm{round}(\\rho N))` warm-up steps
(ρ = ``visual_warmup_ratio``):

1. **Pool** (first batch): the batch text vector :math:`t` picks or opens a semantic pool (θ = 0.1,
   join threshold 0.8, at most ``max_groups``); the task is locked to it, gets the next free slot, and
   every batch updates the pool prototype (running mean).
2. **Warm-up** (steps < n_w): :math:`h = W_0x + s B_{buf}A_{buf}x`; only the buffer trains; the slot's
   centroid is the exact running mean of the batches' routing image features.
3. **Transition**: per layer, SVD of :math:`\\Delta W = sB_{buf}A_{buf}`, τ_alloc, novelty filter against
   the pool's other experts (τ_orth), rank in [r_min, r_max]; the buffer is re-initialised.
4. **Stable phase**: :math:`h = W_0x + s\\sum_{k\\in P}\\pi_k B_kA_kx`, RBF weights of the batch-mean image
   feature; only the new expert and its centroid train, plus the projector; loss
   :math:`\\mathcal{L}_{LM} + \\lambda\\,\\mathrm{mean}_\\ell\\mathrm{mean}_b\\,\\gamma_b
   \\lVert Q_\\ell^\\top z_b\\rVert^2`.

Inference: :math:`g^* = \\arg\\max_g\\cos(t, m_g)`, then centroid routing inside :math:`g^*`. Training uses
task boundaries (task-incremental); inference never reads the task id.

Choices where the reference is open (each a config field):

* ``compensate_scaling=True``: the instantiated expert reproduces the truncated buffer update
  (:math:`B_kA_k = \\mathrm{trunc}(\\Delta W)/s`), so the model does not jump at the transition; ``False``
  is the literal reading (the expert starts at s·ΔW, reference pitfall 6). Thresholds always apply
  to the singular values of :math:`\\Delta W` itself.
* Routing features: image = patch mean of the frozen vision tower
  (:func:`~cvitkit.routers.features.image_features`; the paper uses CLIP image_embeds of a separate
  tower); text = the tiny model's mean input embeddings (mini) or MiniLM (``text_encoder="minilm"``,
  the full-scale stand-in for CLIP's text tower). ``feature_norm="l2"`` (mini) L2-normalises each
  sample's image feature before averaging, so distances live in [0, 2] whatever the tower's scale and
  σ is a distance on the unit sphere; ``"none"`` keeps the raw features (paper, σ = 2).
* The orthogonality penalty detaches the visual hidden state :math:`h_{vis}` (gradients reach only the
  new expert's A, B and, through :math:`\\gamma_b`, its centroid) and averages over the layers that
  contributed.
* Parameter accounting: after each task the buffer is frozen and re-initialised (it is thrown away), so
  the stage's ``adapter_trainable`` = the new expert at its exact ranks + its centroids + projector; the
  buffer, old experts and all centroid rows count in ``adapter_total``. ``no_adaptive_rank`` keeps the
  warm-up (centroids, same step budget) but initialises an r_max expert LoRA-style (Kaiming A, zero B).
  ``visual_warmup_ratio=0`` also implies that init; the centroid is then the running mean over the task.
* A zero singular direction would give :math:`A=B=0` (never trains); its A row is set to the unit
  direction over √d_in instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from cvitkit.adapters import add_mixture, mixture_layers
from cvitkit.adapters.cram import CramLoraConfig, CramState, instantiate_from_buffer
from cvitkit.config import option
from cvitkit.errors import ConfigError
from cvitkit.methods.base import Method, MethodConfig, register_method
from cvitkit.routers import RoutingContext
from cvitkit.routers.cram import ROUTING_MODES, SemanticPools, text_vector
from cvitkit.routers.features import TextEncoder, image_features, instruction_embedding

#: Benchmark-specific values hard-coded in the release (reference §5.1): (rank_max, max_groups).
SUITE_DEFAULTS = {"ucit": (9, 5), "trigap": (10, 10)}


@dataclass
class CramConfig(MethodConfig):
    rank: int = option(48, help="Mirrors buffer_rank (the base class's rank field).")
    alpha: float = option(96, help="Mirrors buffer_alpha.")
    targets: str = option("attention", help="LM attention q, k, v, o only (peft_target_modules='attn').")
    buffer_rank: int = option(48, help="Temporary buffer LoRA rank (cram_rank_total).")
    buffer_alpha: float = option(96, help="Buffer alpha; s = buffer_alpha / buffer_rank is every expert's scaling.")
    rank_min: int = option(4, help="Minimum expert rank per layer.")
    rank_max: int = option(0, help="Maximum expert rank per layer; 0 = the release's value (9 UCIT, 10 otherwise).")
    max_slots: int = option(10, help="Expert slots per layer (one per task).")
    max_groups: int = option(0, help="Pool cap; 0 = the release's value (5 UCIT, 10 TriGap, else number of tasks).")
    use_pools: bool = option(True, help="Level-1 semantic pools; False = one pool for every task.")
    delta_threshold: float = option(0.1, help="theta: top-2 cosine margin needed to join a pool.")
    join_threshold: float = option(0.8, help="Cosine needed to join the only pool.")
    routing: str = option("centroid_rbf", help="Level-2 routing: centroid_rbf or uniform (no_centroid).")
    rbf_sigma: float = option(2.0, help="sigma of the RBF routing kernel.")
    feature_norm: str = option("none", help="Routing image features: none (raw, paper) or l2 (unit norm per sample).")
    text_encoder: str = option("minilm", help="Pool text features: tiny (model's input embeddings) or minilm.")
    adaptive_rank: bool = option(True, help="SVD instantiation from the buffer; False = r_max LoRA-style init.")
    svd_tau_alloc: float = option(0.08, help="tau_alloc on singular values of the buffer update.")
    svd_tau_mode: str = option("absolute", help="absolute (sigma_i > tau) or relative (sigma_i / sigma_1 > tau).")
    svd_tau_novel: float = option(0.99, help="tau_orth: novelty needed against the pool's other experts.")
    novelty_filter: bool = option(True, help="Filter and project candidate directions against the pool's experts.")
    compensate_scaling: bool = option(True, help="Divide the SVD factors by s so the expert reproduces the buffer.")
    visual_warmup_ratio: float = option(0.05, help="Fraction of a task's optimizer steps in warm-up (>= 1 step).")
    train_centroids: bool = option(True, help="The current expert's centroid trains through the routing softmax.")
    dec_lambda: float = option(1.0, help="lambda of the orthogonality penalty (0 disables it).")

    mini_preset: ClassVar[dict] = {
        "buffer_rank": 16, "buffer_alpha": 32, "rank_min": 2, "rank_max": 4, "text_encoder": "tiny",
        "feature_norm": "l2", "rbf_sigma": 0.3, "svd_tau_mode": "relative", "svd_tau_alloc": 0.3,
        "svd_tau_novel": 0.93, "lr": 1e-3, "projector_lr": 1e-4,
    }

    def __post_init__(self):
        self.rank, self.alpha = self.buffer_rank, self.buffer_alpha
        super().__post_init__()
        checks = {"routing": (self.routing, ROUTING_MODES), "feature_norm": (self.feature_norm, ("none", "l2")),
                  "text_encoder": (self.text_encoder, ("tiny", "minilm")),
                  "svd_tau_mode": (self.svd_tau_mode, ("absolute", "relative"))}
        for name, (value, allowed) in checks.items():
            if value not in allowed:
                raise ConfigError(f"cram: {name} must be one of {allowed}, got {value!r}.")
        if not 0 <= self.visual_warmup_ratio < 1:
            raise ConfigError("cram: visual_warmup_ratio must be in [0, 1).")
        if self.rank_max and not 1 <= self.rank_min <= self.rank_max <= self.buffer_rank:
            raise ConfigError("cram: need 1 <= rank_min <= rank_max <= buffer_rank.")


def lora_parameter_count(layer_dims: list[tuple[int, int]], rank: int) -> int:
    """One rank-r LoRA on the given (d_in, d_out) layers: :math:`\\sum_\\ell r(d_{in}+d_{out})`."""
    return sum(rank * (i + o) for i, o in layer_dims)


def cram_parameter_count(layer_dims: list[tuple[int, int]], ranks: list[list[int]], buffer_rank: int,
                         feature_dim: int, max_slots: int, current: int | None = None,
                         train_centroids: bool = True) -> dict[str, int]:
    """Closed-form adapter parameters (projector excluded): total and trainable after a task.

    ``ranks[ℓ][k]`` is slot k's rank in layer ℓ (0 = uncommitted). Total = experts
    :math:`\\sum_\\ell\\sum_k r_{\\ell k}(d_{in}+d_{out})` + buffer :math:`\\sum_\\ell R(d_{in}+d_{out})` + centroid
    tables :math:`L\\cdot S\\cdot D`; trainable = the ``current`` slot's expert (+ its L centroids).
    """
    experts = sum(r * (i + o) for (i, o), row in zip(layer_dims, ranks) for r in row)
    buffer = lora_parameter_count(layer_dims, buffer_rank)
    centroids = len(layer_dims) * max_slots * feature_dim
    trainable = 0
    if current is not None:
        trainable = sum(row[current] * (i + o) for (i, o), row in zip(layer_dims, ranks))
        trainable += len(layer_dims) * feature_dim if train_centroids else 0
    return {"experts": experts, "buffer": buffer, "centroids": centroids, "total": experts + buffer + centroids,
            "trainable": trainable}


@register_method
class CRAM(Method):
    name = "cram"
    config_class = CramConfig
    protocols = ("task_incremental",)

    def __init__(self, config: CramConfig, suite=None, seed: int = 0):
        super().__init__(config, suite, seed)
        key = getattr(suite, "name", "")
        n_tasks = len(getattr(suite, "tasks", []) or []) or config.max_slots
        rank_max, groups = SUITE_DEFAULTS.get(key, (10, n_tasks))
        # Resolve the release's per-benchmark values into the config, so config.json shows them.
        config.rank_max = config.rank_max or min(rank_max, config.buffer_rank)
        config.max_groups = config.max_groups or groups
        CramConfig.__post_init__(config)

    # -- setup --------------------------------------------------------------------------------------
    def setup(self, model, processor):
        c = self.config
        self.context = RoutingContext()
        self.cram = CramState()
        self.context.extras["cram"] = self.cram
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        self.feature_dim = base.config.vision_config.hidden_size
        self.image_token_id = getattr(base.config, "image_token_id", None)
        if self.image_token_id is None:
            self.image_token_id = base.config.image_token_index
        kwargs = {"max_slots": c.max_slots, "feature_dim": self.feature_dim, "sigma": c.rbf_sigma,
                  "routing": c.routing}
        model = add_mixture(model, c.buffer_rank, c.buffer_alpha, c.dropout,
                            {"n_experts": 1, "router": "cram_centroid", "router_kwargs": kwargs, "a_init_std": None},
                            c.targets, train_projector=c.train_projector, routing_context=self.context,
                            config_class=CramLoraConfig)
        self.pools = SemanticPools(c.max_groups if c.use_pools else 1, c.delta_threshold, c.join_threshold)
        self.committed: list[int] = []
        self.slot_task: dict[int, str] = {}
        self.task_pool: dict[str, int] = {}
        self.assignments: dict[str, dict] = {}
        self.budget_charge: dict[int, int] = {}
        self.svd_log: dict[str, dict] = {}
        self._encoder = None
        self._eval: dict[str, dict] = {}
        super().setup(model, processor)
        self._freeze_all()
        self._slot = self._pool = None
        self._phase = "off"
        return self.model

    def layers(self):
        return mixture_layers(self.model)

    def _freeze_all(self) -> None:
        for name, p in self.model.named_parameters():
            if "lora_" in name:
                p.requires_grad_(False)

    # -- routing features -----------------------------------------------------------------------------
    def _image_features(self, batch) -> torch.Tensor | None:
        if batch.get("pixel_values") is None:
            return None
        v = image_features(self.model, batch["pixel_values"])
        return F.normalize(v, dim=-1) if self.config.feature_norm == "l2" else v

    def _text_vector(self, batch) -> torch.Tensor:
        if self.config.text_encoder == "tiny":
            per_sample = instruction_embedding(self.model, batch["routing_ids"], batch["routing_mask"],
                                               include_padding=False)
        else:
            if self._encoder is None:
                self._encoder = TextEncoder("minilm")
            ids = batch["routing_ids"] * batch["routing_mask"]
            texts = self.processor.tokenizer.batch_decode(ids, skip_special_tokens=True)
            per_sample = self._encoder.encode(texts)
        return text_vector(per_sample)

    # -- lifecycle ------------------------------------------------------------------------------------
    def before_experience(self, experience):
        super().before_experience(experience)
        c = self.config
        slot = len(self.committed)
        if slot >= c.max_slots:
            raise ConfigError(f"cram: task {experience.index + 1} needs expert slot {slot}, but max_slots is "
                              f"{c.max_slots}. Raise max_slots to the number of tasks.")
        self._slot, self._pool, self._task = slot, None, experience.task_name or f"task_{experience.index}"
        self._steps, self._n_warm, self._instantiated = 0, 1, False
        self._feat_sum, self._feat_count = torch.zeros(self.feature_dim), 0
        self._freeze_all()
        for layer in self.layers():
            layer.begin_slot(slot, c.rank_max)
            layer.reset_buffer()
            warm = c.visual_warmup_ratio > 0
            layer.lora_buffer_A["default"].requires_grad_(warm)
            layer.lora_buffer_B["default"].requires_grad_(warm)
            layer.centroid(slot).requires_grad_(c.train_centroids and warm)
        self._phase = "warmup" if c.visual_warmup_ratio > 0 else "stable"

    def before_training(self, experience, optimizer_steps):
        r = self.config.visual_warmup_ratio
        self._n_warm = max(1, int(round(r * optimizer_steps))) if r > 0 else 0

    def after_step(self):
        self._steps += 1

    def prepare_batch(self, batch, training):
        self.context.reset_batch()
        st = self.cram
        st.weights, st.penalty, st.image_mask = {}, False, None
        v = self._image_features(batch)
        t = self._text_vector(batch)
        st.sample_features = v
        st.batch_feature = v.mean(0) if v is not None else None
        self.context.record_stats = not training  # usage statistics describe evaluation routing only
        if training:
            self._prepare_training(batch, v, t)
        else:
            pool = self.pools.route(t) if len(self.pools) else None
            slots = [k for k in self.pools.slots[pool] if k in self.committed] if pool is not None else []
            st.phase, st.pool_slots, st.current, st.history = ("mixture" if slots else "off"), slots, None, []
            self._last_eval = (batch.get("tasks") or [None])[0] or "?", pool
        return super().prepare_batch(batch, training)

    def _prepare_training(self, batch, v, t) -> None:
        c, st = self.config, self.cram
        if self._pool is None:  # first batch of the task: choose and lock the pool
            decision = self.pools.decide(t) if c.use_pools else None
            self._pool = decision.pool if decision else 0
            self.pools.join(self._pool, self._task, self._slot)
            self.task_pool[self._task] = self._pool
            self.slot_task[self._slot] = self._task
            self.assignments[self._task] = ({"pool": decision.pool, "rule": decision.rule,
                                             "similarities": decision.similarities} if decision
                                            else {"pool": 0, "rule": "single pool (use_pools=False)"})
        self.pools.update(self._pool, t)
        if not self._instantiated and self._steps >= self._n_warm:
            self._instantiate()
        if v is not None and (not self._instantiated or self._n_warm == 0):
            self._feat_sum += v.detach().float().sum(0).cpu()
            self._feat_count += v.shape[0]
            if self._n_warm == 0:
                self._write_centroid()
        if not self._instantiated:
            st.phase, st.pool_slots, st.current, st.history = "warmup", [], self._slot, []
            return
        history = [k for k in self.pools.slots[self._pool] if k in self.committed and k != self._slot]
        st.phase, st.pool_slots, st.current, st.history = "mixture", history + [self._slot], self._slot, history
        st.penalty = c.dec_lambda > 0 and bool(history)
        if st.penalty:
            st.image_mask = batch["input_ids"] == self.image_token_id

    @torch.no_grad()
    def _write_centroid(self) -> None:
        if self._feat_count:
            mean = self._feat_sum / self._feat_count
            for layer in self.layers():
                layer.centroid(self._slot).copy_(mean.to(layer.centroid(self._slot).dtype))

    def _instantiate(self) -> None:
        """Turn the warm-up buffer into the task's expert in every layer, then reset the buffer."""
        c = self.config
        others = [k for k in self.pools.slots[self._pool] if k in self.committed and k != self._slot]
        self.svd_log = {}
        for layer in self.layers():
            A_buf, B_buf = layer.lora_buffer_A["default"], layer.lora_buffer_B["default"]
            if c.adaptive_rank and self._n_warm > 0:
                inst = instantiate_from_buffer(
                    A_buf.detach(), B_buf.detach(), layer.scaling["default"],
                    [layer.expert(k)[0] for k in others], c.svd_tau_alloc, c.svd_tau_novel, c.rank_min,
                    c.rank_max, c.svd_tau_mode, c.novelty_filter, c.compensate_scaling)
                layer.set_expert(self._slot, inst.A, inst.B)
                self.svd_log[layer.layer_name] = {
                    "singular_values": [round(s, 6) for s in inst.singular_values], "candidates": len(inst.candidates),
                    "kept_after_novelty": len(inst.kept), "rank": inst.rank}
            else:
                A = torch.empty(c.rank_max, layer.in_features, dtype=A_buf.dtype, device=A_buf.device)
                torch.nn.init.kaiming_uniform_(A, a=math.sqrt(5))
                layer.set_expert(self._slot, A, torch.zeros_like(B_buf[:, : c.rank_max]))
            layer.reset_buffer()
            A_buf.requires_grad_(False)
            B_buf.requires_grad_(False)
            for p in (layer.lora_A["default"][self._slot], layer.lora_B["default"][self._slot]):
                p.requires_grad_(True)
        self._write_centroid()
        self._instantiated = True

    def compute_loss(self, inputs, outputs, batch):
        loss, logs = super().compute_loss(inputs, outputs, batch)
        terms = self.context.aux_losses
        if terms and self.config.dec_lambda:
            orth = self.config.dec_lambda * torch.stack([x.to(loss.dtype) for x in terms]).mean()
            loss = loss + orth.to(loss.device)
            logs["orth"] = orth.detach().item()
        logs["phase_warmup"] = float(not self._instantiated)
        return loss, logs

    def after_experience(self, experience, records):
        if not self._instantiated:  # the task was shorter than its warm-up
            self._instantiate()
        for layer in self.layers():
            layer.finalize_slot(self._slot)
        self.committed.append(self._slot)
        self.budget_charge[self._slot] = max(layer.ranks()[self._slot] for layer in self.layers())
        self._phase = "off"
        self.cram.phase = "off"

    @torch.no_grad()
    def generate(self, inputs, batch, **generate_kwargs):
        new, meta = super().generate(inputs, batch, **generate_kwargs)
        task, pool = getattr(self, "_last_eval", ("?", None))
        weights = self.cram.weights
        slots = self.cram.pool_slots
        info = {"pool": pool}
        if weights and slots:
            mean = torch.stack(list(weights.values())).mean(0)
            info["top_slot"] = slots[int(mean.argmax())]
            usage = self._eval.setdefault(task, {"batches": 0, "pool_hits": 0, "slot_hits": 0,
                                                 "weights": torch.zeros(self.config.max_slots)})
            usage["batches"] += 1
            usage["pool_hits"] += int(pool == self.task_pool.get(task))
            usage["slot_hits"] += int(info["top_slot"] == next((k for k, t in self.slot_task.items() if t == task), -1))
            usage["weights"][slots] += mean.cpu()
        return new, [dict(info) for _ in meta]

    # -- state ----------------------------------------------------------------------------------------
    def state(self):
        tensors, pools = self.pools.state()
        meta = {"pools": pools, "committed": list(self.committed), "slot_task": {str(k): v for k, v in
                                                                                  self.slot_task.items()},
                "task_pool": dict(self.task_pool), "assignments": self.assignments,
                "budget_charge": {str(k): v for k, v in self.budget_charge.items()}}
        return tensors, meta

    def load_state(self, tensors, meta):
        self.pools.load(tensors, meta.get("pools", {}))
        self.committed = list(meta.get("committed", []))
        self.slot_task = {int(k): v for k, v in meta.get("slot_task", {}).items()}
        self.task_pool = dict(meta.get("task_pool", {}))
        self.assignments = dict(meta.get("assignments", {}))
        self.budget_charge = {int(k): v for k, v in meta.get("budget_charge", {}).items()}
        self._freeze_all()

    # -- statistics -----------------------------------------------------------------------------------
    def layer_dims(self) -> list[tuple[int, int]]:
        return [(layer.in_features, layer.out_features) for layer in self.layers()]

    def parameter_report(self) -> dict:
        """Closed-form counts: CRAM's experts vs one rank-r LoRA per task on the same layers."""
        c, dims = self.config, self.layer_dims()
        ranks = [layer.ranks() for layer in self.layers()]
        counts = cram_parameter_count(dims, ranks, c.buffer_rank, self.feature_dim, c.max_slots,
                                      self.committed[-1] if self.committed else None,
                                      c.train_centroids and c.visual_warmup_ratio > 0)
        T = len(self.committed)
        return {**counts, "tasks": T,
                "one_lora_per_task_rank_max": T * lora_parameter_count(dims, c.rank_max),
                "one_lora_per_task_buffer_rank": T * lora_parameter_count(dims, c.buffer_rank),
                "experts_vs_lora_rank_max": (counts["experts"] / (T * lora_parameter_count(dims, c.rank_max))
                                             if T else None)}

    def statistics(self):
        stats = self.context.pop_stats()
        out = {"expert_usage": {k: (v / v.sum().clamp_min(1e-12)).tolist() for k, v in stats.items()}}
        out["ranks"] = {layer.layer_name: layer.ranks() for layer in self.layers()}
        out["pools"] = {"task_pool": dict(self.task_pool),
                        "members": {str(g): t for g, t in enumerate(self.pools.tasks)},
                        "slots": {str(g): s for g, s in enumerate(self.pools.slots)},
                        "assignments": self.assignments, "max_groups": self.pools.max_groups}
        out["budget_charge"] = {str(k): v for k, v in self.budget_charge.items()}
        out["svd"] = self.svd_log
        out["parameters"] = self.parameter_report()
        if self._eval:
            out["routing_by_task"] = {t: (u["weights"] / u["weights"].sum().clamp_min(1e-12)).tolist()
                                      for t, u in self._eval.items()}
            for key, hits in (("pool_accuracy", "pool_hits"), ("expert_accuracy", "slot_hits")):
                per = {t: 100.0 * u[hits] / u["batches"] for t, u in self._eval.items()}
                n = sum(u["batches"] for u in self._eval.values())
                per["overall"] = 100.0 * sum(u[hits] for u in self._eval.values()) / n
                out[key] = per
        self._eval = {}
        return out
