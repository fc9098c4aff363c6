"""BranchLoRA (Zhang et al., ACL 2025): a shared LoRA trunk, sparse branches, task routers, a task selector.

Every adapted linear :math:`W_0 \\in \\mathbb{R}^{d_{out}\\times d_{in}}` gets one trunk
:math:`A \\in \\mathbb{R}^{r_b\\times d_{in}}` and N branches :math:`B_j \\in \\mathbb{R}^{d_{out}\\times r_b}`
(:class:`~cvitkit.adapters.MixtureLoraLinear` with ``shared_a=True``), mixed by the router of the
sample's task (:class:`~cvitkit.routers.branchlora.BranchRouterBank`):

.. math:: h = W_0 x + s \\sum_{j \\in \\mathrm{TopK}(g,k)} \\hat g_j\\, B_j A x,\\qquad
          g = \\mathrm{softmax}(W_r^{(t)} x),\\qquad s = \\frac{\\alpha}{N r_b}

Training task t: a new router :math:`W_r^{(t)}` and key pair are added (older ones frozen); trunk,
tunable branches, the new router and keys, and the projector train on
:math:`\\mathcal{L}_{LM} + \\lambda\\,\\mathcal{L}_{align}`. After the task the k most-used tunable
branches of each layer freeze (they stay routable). At inference the task selector picks each
sample's router from cosine similarity to the task keys (no task id).

Provenance (reference ``methods/branchlora.md``; the paper's equations were unavailable):

* trunk/branch split — rank 128 over 8 branches (r_b = 16), α = 256, all LM linears: the only reading
  that reproduces the reported 222M vs 350M tunable parameters (:func:`paper_scale_counts`); the
  summary's "FFN only" is the ``targets: ffn`` switch. Scaling α / (N r_b) and A ~ N(0, 0.01²), B = 0,
  router init as nn.Linear: CoIN's MoELoRA, which BranchLoRA builds on.
* optimisation — CoIN MoELoRA defaults: lr 2e-4, projector lr 2e-5, 1 epoch, cosine, warm-up 0.03.

Choices where the reference is open (each a config field):

* ``route_granularity: token`` (default). The summary says the router reads "the first token"; in a
  causal decoder the first token's hidden state does not depend on the rest of the input, so
  ``first_token`` routing is a learned per-task constant gate. ``token`` keeps CoIN's token-wise router.
* usage for freezing = the renormalised top-k gate mass of each branch on the task's real (non-pad)
  tokens, accumulated during the last ``usage_window`` (half) of the task's optimizer steps (no
  extra pass; the router has settled by then). ``usage_measure: count`` uses selection frequency.
* ``freeze_policy: topk_of_unfrozen`` with ``min_tunable = k``: a layer freezes its k most-used
  tunable branches only while k tunable branches remain afterwards, so with N = 8, k = 2 tasks 1–3
  freeze 2 branches each and the last 2 stay tunable (shared by tasks 4–8); ``min_tunable: 0`` lets
  the branches run out (later tasks then train only trunk, router, keys, projector).
* the trunk keeps training (``train_trunk_after_task1``); new routers start at random
  (``router_init``); routers and keys freeze when their task ends.
* selector encoders (unstated; the reference suspects frozen CLIP features): image feature = mean of
  the frozen vision tower's patch states; text feature = ``text_encoder`` — ``minilm`` (paper preset:
  the offline all-MiniLM-L6-v2 sentence encoder) or ``tiny`` (mini preset: mean input-word embedding of
  the user text, the kit's ``TextEncoder("tiny")`` without re-tokenising). :math:`\\mathcal{L}_{align}` is a batch mean
  (a sum would scale with the batch and, under global gradient clipping, shrink the LM gradient).
  Keys start at the mean direction of the task's first batch (``key_init: data``, the alignment loss's
  minimiser, which keeps the keys' gradient small under clipping) and are refined by the loss.
  Score = sum of the two cosines (``selector_features`` restricts it to one modality; the statistics
  also report what each modality alone would pick); argmax over tasks seen so far. During training
  the true task's router is used (task-incremental training knows its task, as in the paper).

Cumulative ablation (paper Table, ``configs/methods/branchlora.yaml``): ``share_a``, ``top_k`` (0 = dense),
``freeze_after_task``, ``task_routers``; all off is CoIN's MoELoRA.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from cvitkit.adapters import add_mixture, mixture_layers
from cvitkit.config import option
from cvitkit.errors import ConfigError
from cvitkit.methods.base import Method, MethodConfig, register_method
from cvitkit.routers import RoutingContext
from cvitkit.routers.branchlora import TaskSelector, choose_branches_to_freeze
from cvitkit.routers.features import TextEncoder, image_features, instruction_embedding

SELECTOR_ATTR = "lora_task_selector"  # the "lora_" prefix puts the keys in the adapter state


@dataclass
class BranchLoRAConfig(MethodConfig):
    n_branches: int = option(8, help="Branches N per adapted layer (rank is split: r_b = rank / N).")
    top_k: int = option(2, help="Branches per routing decision, renormalised (0 = dense softmax).")
    share_a: bool = option(True, help="One shared trunk A per layer (False: one A per branch, as MoELoRA).")
    freeze_after_task: bool = option(True, help="Flexible tuning-freezing of the most-used branches after a task.")
    task_routers: bool = option(True, help="A router per task chosen by the task selector (False: one router).")
    align_lambda: float = option(1.0, help="Weight of the task keys' cosine alignment loss.")
    route_granularity: str = option("token", help="Router input: token (each token) or first_token.")
    freeze_policy: str = option("topk_of_unfrozen", help="topk_of_unfrozen or topk_of_all (see docstring).")
    n_freeze: int = option(-1, help="Branches frozen per layer and task; -1 = top_k (2 when dense).")
    min_tunable: int = option(-1, help="Never leave fewer tunable branches than this; -1 = n_freeze.")
    usage_window: float = option(0.5, help="Final fraction of a task's steps over which usage is measured.")
    usage_measure: str = option("mass", help="Usage for freezing: mass (gate weight) or count (selections).")
    train_trunk_after_task1: bool = option(True, help="Keep training the shared trunk A after the first task.")
    router_init: str = option("random", help="A new task router starts random or as a copy of the last.")
    selector: str = option("keys", help="Router choice at inference: keys (task selector) or oracle.")
    text_encoder: str = option("minilm", help="Text features of the selector: minilm (a real sentence encoder, "
                                              "full scale) or tiny (the model's mean input embeddings).")
    selector_features: str = option("image_text", help="Cosines summed by the selector: image_text, image or text.")
    key_init: str = option("data", help="Task keys start at the first batch's mean feature (data) or random.")
    a_init_std: float = option(0.01, help="Std of the trunk's normal init (CoIN: 0.01).")

    mini_preset: ClassVar[dict] = {"n_branches": 8, "rank": 32, "alpha": 64, "text_encoder": "tiny"}

    def __post_init__(self):
        super().__post_init__()
        checks = {"route_granularity": ("token", "first_token"), "freeze_policy": ("topk_of_unfrozen", "topk_of_all"),
                  "usage_measure": ("mass", "count"), "router_init": ("random", "copy"),
                  "selector": ("keys", "oracle"), "text_encoder": ("tiny", "minilm"),
                  "selector_features": ("image_text", "image", "text"), "key_init": ("data", "random")}
        for name, allowed in checks.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"branchlora {name} must be one of {allowed}, got {getattr(self, name)!r}.")
        if self.n_branches <= 0 or self.rank % self.n_branches:
            raise ConfigError(f"rank {self.rank} must be a positive multiple of n_branches {self.n_branches}.")
        if not 0 <= self.top_k <= self.n_branches:
            raise ConfigError(f"top_k must lie in [0, n_branches={self.n_branches}], got {self.top_k}.")
        if not 0 < self.usage_window <= 1:
            raise ConfigError(f"usage_window must lie in (0, 1], got {self.usage_window}.")

    @property
    def freeze_count(self) -> int:
        return self.n_freeze if self.n_freeze >= 0 else (self.top_k if 0 < self.top_k < self.n_branches else 2)

    @property
    def tunable_floor(self) -> int:
        return self.min_tunable if self.min_tunable >= 0 else self.freeze_count


# -- closed-form parameter counts ----------------------------------------------------------------
def branchlora_parameter_count(shapes: list[tuple[int, int]], n_branches: int, branch_rank: int, share_a: bool = True,
                               n_routers: int = 1, n_tunable: int | None = None, trunk: bool = True,
                               key_dims: tuple[int, int] = (0, 0), n_keys: int = 0, projector: int = 0) -> int:
    """Adapter parameters over layers of shape (d_in, d_out).

    Trunk :math:`r_b d_{in}` (N times without sharing), ``n_tunable`` (default N) branches
    :math:`d_{out} r_b`, ``n_routers`` routers :math:`N d_{in}`, ``n_keys`` key pairs and the projector.
    Frozen parts are left out by passing the trainable numbers (one router, the tunable branches).
    """
    n_tunable = n_branches if n_tunable is None else n_tunable
    total = 0
    for d_in, d_out in shapes:
        if trunk:
            total += (1 if share_a else n_tunable) * branch_rank * d_in
        total += n_tunable * d_out * branch_rank + n_routers * n_branches * d_in
    return total + n_keys * sum(key_dims) + projector


def moelora_parameter_count(shapes: list[tuple[int, int]], n_experts: int, expert_rank: int, projector: int = 0) -> int:
    """CoIN MoELoRA: E experts with their own A and B plus one router, per layer."""
    return sum(n_experts * expert_rank * (d_in + d_out) + n_experts * d_in for d_in, d_out in shapes) + projector


def llava7b_shapes(layers: int = 32, d: int = 4096, d_ff: int = 11008) -> list[tuple[int, int]]:
    """(d_in, d_out) of every LoRA target of LLaVA-1.5-7B's language model (q, k, v, o, gate, up, down)."""
    return [(d, d)] * 4 * layers + [(d, d_ff)] * 2 * layers + [(d_ff, d)] * layers


def paper_scale_counts() -> dict[str, int]:
    """Tunable parameters at paper scale: BranchLoRA ≈ 222M vs MoELoRA ≈ 350M (projector 1024→4096→4096)."""
    shapes, projector = llava7b_shapes(), 1024 * 4096 + 4096 + 4096 * 4096 + 4096
    return {"branchlora": branchlora_parameter_count(shapes, 8, 16, projector=projector),
            "moelora": moelora_parameter_count(shapes, 8, 16, projector=projector)}


@register_method
class BranchLoRA(Method):
    name = "branchlora"
    config_class = BranchLoRAConfig
    protocols = ("task_incremental",)  # task routers are added at task boundaries

    def mixture_spec(self) -> dict:
        c = self.config
        return {"n_experts": c.n_branches, "shared_a": c.share_a, "router": "branchlora", "a_init_std": c.a_init_std,
                "router_kwargs": {"top_k": c.top_k, "granularity": c.route_granularity}}

    def setup(self, model, processor):
        c = self.config
        self.context = RoutingContext()
        model = add_mixture(model, c.rank, c.alpha, c.dropout, self.mixture_spec(), c.targets,
                            train_projector=c.train_projector, routing_context=self.context)
        self.task_order: list[str] = []
        self.frozen: dict[str, set[int]] = {layer.layer_name: set() for layer in mixture_layers(model)}
        self.freeze_log: list[dict] = []
        self.selector = None
        self._encoder = None
        if c.task_routers:
            base = model.get_base_model()
            text_dim = base.get_input_embeddings().weight.shape[1]
            if c.text_encoder == "minilm":
                self._encoder = TextEncoder("minilm", device=str(next(model.parameters()).device))
                text_dim = int(self._encoder.encode(["a"]).shape[-1])
            self.selector = TaskSelector(base.config.vision_config.hidden_size, text_dim)
            setattr(model, SELECTOR_ATTR, self.selector.to(next(model.parameters()).device))
        self._usage: dict[str, torch.Tensor] = {}
        self._features = (None, None)
        self._reset_selector_counts()
        return super().setup(model, processor)

    # -- structure that grows with tasks --------------------------------------------------------
    def layers(self):
        return mixture_layers(self.model)

    def banks(self):
        return [layer.lora_router["default"] for layer in self.layers()]

    @property
    def router_index(self) -> int:
        return len(self.task_order) - 1 if self.config.task_routers else 0

    def _register_task(self, experience) -> None:
        self.task_order.append(experience.task_name or f"experience_{experience.index}")
        if self.config.task_routers:
            if len(self.task_order) > 1:
                for bank in self.banks():
                    bank.add_router(self.config.router_init)
            self.selector.add_task()

    def apply_trainable(self, training: bool = True) -> None:
        """requires_grad of trunk, branches, routers and keys for the current task (``False``: all off)."""
        c = self.config
        trunk = training and (c.train_trunk_after_task1 or len(self.task_order) <= 1)
        for layer in self.layers():
            frozen = self.frozen.get(layer.layer_name, set())
            for j, B in enumerate(layer.lora_B["default"]):
                B.requires_grad_(training and j not in frozen)
            for j, A in enumerate(layer.lora_A["default"]):
                A.requires_grad_(trunk and (c.share_a or j not in frozen))
            layer.lora_router["default"].set_trainable(self.router_index if training else None)
        if self.selector is not None:
            for keys in (self.selector.image_keys, self.selector.text_keys):
                for t, k in enumerate(keys):
                    k.requires_grad_(training and t == len(keys) - 1)

    def before_experience(self, experience):
        super().before_experience(experience)
        self._register_task(experience)
        self.apply_trainable(True)
        self._usage = {}
        self._step = self._usage_start = 0
        self._key_pending = self.selector is not None and self.config.key_init == "data"

    def before_training(self, experience, optimizer_steps):
        self._usage_start = int(optimizer_steps * (1 - self.config.usage_window))

    def prepare_for_resume(self, finished):
        for experience in finished:
            self._register_task(experience)
        self.apply_trainable(False)

    # -- batches ------------------------------------------------------------------------------------
    def features(self, batch) -> tuple[torch.Tensor | None, torch.Tensor]:
        """(image, text) routing features of the selector, detached from the frozen base."""
        pixels = batch.get("pixel_values")
        image = image_features(self.model, pixels) if pixels is not None and len(pixels) == len(batch["input_ids"]) \
            else None
        if self._encoder is not None:
            tok = self.processor.tokenizer
            texts = [tok.decode(ids[m.bool()], skip_special_tokens=True)
                     for ids, m in zip(batch["routing_ids"], batch["routing_mask"])]
            text = self._encoder.encode(texts)
        else:
            text = instruction_embedding(self.model, batch["routing_ids"], batch["routing_mask"], include_padding=False)
        return image, text

    def prepare_batch(self, batch, training):
        ctx, c = self.context, self.config
        ctx.reset_batch()
        for key in ("first_gates", "branch_router"):
            ctx.extras.pop(key, None)
        mask = batch["attention_mask"]
        ctx.extras.update(token_mask=mask, first_index=mask.argmax(1), usage=self._usage, usage_measure=c.usage_measure)
        n = mask.shape[0]
        if training:
            ctx.record_stats = False
            ctx.extras["track_usage"] = c.freeze_after_task and self._step >= self._usage_start
            index = self.router_index
            if self.selector is not None and c.align_lambda > 0:
                self._features = self.features(batch)
                if self._key_pending:
                    self.selector.init_from_features(len(self.selector) - 1, *self._features)
                    self._key_pending = False
        else:
            ctx.record_stats, ctx.extras["track_usage"] = True, False
            index = self._select(batch) if self.selector is not None else 0
        ctx.task_index = index if torch.is_tensor(index) else torch.full((n,), index, dtype=torch.long)
        if not torch.is_tensor(index) or bool((index == index[0]).all()):
            ctx.extras["branch_router"] = int(ctx.task_index[0])  # one router for the batch: plain matmul
        return super().prepare_batch(batch, training)

    def _select(self, batch) -> torch.Tensor:
        tasks = batch["tasks"]
        if self.config.selector == "oracle":
            lookup = {t: i for i, t in enumerate(self.task_order)}
            index = torch.tensor([lookup.get(t, len(self.task_order) - 1) for t in tasks], dtype=torch.long)
        else:
            image, text = self.features(batch)
            use = self.config.selector_features
            index = self.selector.select(image if use != "text" else None, text if use != "image" else None)
            if len(self.selector):  # diagnostics: what each modality alone would pick (statistics only)
                for mode, pick in (("image", (image, None)), ("text", (None, text))):
                    if pick[0] is None and pick[1] is None:
                        continue
                    for true, pred in zip(tasks, self.selector.select(*pick).tolist()):
                        hits = self._by_modality.setdefault(mode, {}).setdefault(true, [0, 0])
                        hits[0] += int(self.task_order[pred] == true)
                        hits[1] += 1
        names = [self.task_order[i] if i < len(self.task_order) else None for i in index.tolist()]
        for true, name in zip(tasks, names):
            row = self._confusion.setdefault(true, {})
            row[name] = row.get(name, 0) + 1
        self._last_pred = names
        return index

    def compute_loss(self, inputs, outputs, batch):
        loss, logs = super().compute_loss(inputs, outputs, batch)
        if self.selector is not None and self.config.align_lambda > 0 and self._features[1] is not None:
            align = self.selector.alignment_loss(len(self.selector) - 1, *self._features)
            loss = loss + self.config.align_lambda * align.to(loss.device)
            logs["align"] = align.item()
        return loss, logs

    def after_step(self):
        self._step += 1

    @torch.no_grad()
    def generate(self, inputs, batch, **generate_kwargs):
        new_tokens, _ = super().generate(inputs, batch, **generate_kwargs)
        index = self.context.task_index.tolist()
        names = getattr(self, "_last_pred", None) or [None] * len(index)
        return new_tokens, [{"router": i, "selected_task": names[j] if j < len(names) else None}
                            for j, i in enumerate(index)]

    # -- end of a task ------------------------------------------------------------------------------
    def after_experience(self, experience, records):
        """Decide which branches freeze; requires_grad changes when the next task starts.

        (The trainer counts trainable parameters right after this hook, so the count still shows
        what trained during the task.)
        """
        c, newly = self.config, {}
        if c.freeze_after_task:
            for layer in self.layers():
                usage = self._usage.get(layer.layer_name)
                if usage is None:
                    continue
                frozen = self.frozen.setdefault(layer.layer_name, set())
                chosen = choose_branches_to_freeze(usage, frozen, c.freeze_count, c.freeze_policy, c.tunable_floor)
                frozen.update(chosen)
                newly[layer.layer_name] = chosen
        self.freeze_log.append({"task": self.task_order[-1], "frozen": newly,
                                "usage": {k: (v / v.sum().clamp_min(1e-12)).tolist() for k, v in self._usage.items()}})
        self._reset_selector_counts()

    def _reset_selector_counts(self) -> None:
        self._confusion: dict[str, dict] = {}
        self._by_modality: dict[str, dict] = {}
        self._last_pred = None

    # -- state and statistics -----------------------------------------------------------------------
    def state(self):
        return {}, {"task_order": list(self.task_order), "frozen": {k: sorted(v) for k, v in self.frozen.items()},
                    "freeze_log": self.freeze_log}

    def load_state(self, tensors, meta):
        if meta.get("task_order", self.task_order) != self.task_order:
            raise ConfigError(f"branchlora state lists tasks {meta['task_order']} but the run has {self.task_order}.")
        self.frozen = {k: set(v) for k, v in meta.get("frozen", {}).items()}
        self.freeze_log = list(meta.get("freeze_log", []))
        self.apply_trainable(False)

    def statistics(self):
        """Eval routing mass per branch, selector accuracy and confusion, frozen branches, freeze usage."""
        out = {}
        stats = self.context.pop_stats()
        if stats:
            out["expert_usage"] = {k: (v / v.sum()).tolist() for k, v in stats.items()}
        if self._confusion:
            correct = {t: row.get(t, 0) for t, row in self._confusion.items()}
            totals = {t: sum(row.values()) for t, row in self._confusion.items()}
            acc = {t: 100.0 * correct[t] / totals[t] for t in totals}
            acc["overall"] = 100.0 * sum(correct.values()) / max(1, sum(totals.values()))
            out["selector_accuracy" if self.config.selector == "keys" else "oracle_selector_accuracy"] = acc
            out["selector_confusion"] = self._confusion
        for mode, hits in self._by_modality.items():
            acc = {t: 100.0 * c / n for t, (c, n) in hits.items()}
            acc["overall"] = 100.0 * sum(c for c, _ in hits.values()) / max(1, sum(n for _, n in hits.values()))
            out[f"selector_accuracy_{mode}_only"] = acc
        out["frozen_branches"] = {k: sorted(v) for k, v in self.frozen.items()}
        out["tunable_branches"] = {k: self.config.n_branches - len(v) for k, v in self.frozen.items()}
        if self.freeze_log:
            out["freeze_last_task"] = self.freeze_log[-1]
        out["task_order"] = list(self.task_order)
        return out
