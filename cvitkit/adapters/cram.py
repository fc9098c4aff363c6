"""CRAM's adapted linear layer: a temporary buffer LoRA, variable-rank expert slots, centroid routing.

Every adapted linear :math:`W_0\\in\\mathbb{R}^{d_{out}\\times d_{in}}` (LM attention q/k/v/o) holds

* a **buffer** LoRA :math:`A_{buf}\\in\\mathbb{R}^{R\\times d_{in}}` (Kaiming-uniform),
  :math:`B_{buf}\\in\\mathbb{R}^{d_{out}\\times R}` (zero), scaling :math:`s=\\alpha/R` (48/96 → 2);
* ``max_slots`` **expert slots** :math:`A_k\\in\\mathbb{R}^{r_k\\times d_{in}}`,
  :math:`B_k\\in\\mathbb{R}^{d_{out}\\times r_k}`
  with the same scaling s. An uncommitted slot is a zero-size parameter; the slot being trained is
  allocated at :math:`r_{max}` rows and only its first :math:`r_k` rows are used (slicing: the padding
  gets no gradient and stays zero); :meth:`CramLoraLinear.finalize_slot` then shrinks it to exactly
  :math:`r_k`, so the parameter counts are the real ones. Reloading resizes slots to the saved shapes.
* a :class:`~cvitkit.routers.cram.CentroidRouter` with one visual centroid per slot.

Forward, by the phase the method sets in the routing context (``ctx.extras["cram"]``, a
:class:`CramState`):

* ``warmup``:  :math:`h = W_0x + s\\,B_{buf}A_{buf}x` (the buffer alone);
* ``mixture`` (stable phase and inference): :math:`h = W_0x + s\\sum_{k\\in P}\\pi_k B_kA_kx` over the
  pool's committed slots, computed as one pair of products with the gates repeated over each expert's
  rank;
* ``off``: the base layer alone (no expert yet).

Adaptive-rank instantiation (:func:`instantiate_from_buffer`) and the orthogonality energy
(:func:`orthogonality_energy`) are pure functions, tested on hand-made matrices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from cvitkit.adapters.mixture import MixtureLoraConfig, MixtureLoraLinear


@dataclass
class CramState:
    """What the method tells every CRAM layer about the current batch (shared through the context)."""

    phase: str = "off"  # off | warmup | mixture
    pool_slots: list[int] = field(default_factory=list)  # committed slots routed over
    current: int | None = None  # slot trained in the stable phase
    history: list[int] = field(default_factory=list)  # other committed slots of the current pool
    batch_feature: torch.Tensor | None = None  # c: (D,) batch-mean routing image feature
    sample_features: torch.Tensor | None = None  # v_b: (B, D) per-sample features (orthogonality weights)
    image_mask: torch.Tensor | None = None  # (B, T) True at image-token positions
    penalty: bool = False  # compute the orthogonality energy in this forward
    weights: dict[str, torch.Tensor] = field(default_factory=dict)  # layer → last routing weights (detached)


# -- pure functions -------------------------------------------------------------------------------------
def orthonormal_basis(rows: torch.Tensor, rel_tol: float = 1e-6) -> torch.Tensor | None:
    """Orthonormal basis (d, q) of the span of the rows of ``rows`` (n, d); None if empty."""
    if rows.numel() == 0:
        return None
    U, S, _ = torch.linalg.svd(rows.t().double(), full_matrices=False)
    keep = S > rel_tol * S.max().clamp_min(1e-30)
    return U[:, keep].to(rows.dtype) if keep.any() else None


@dataclass
class Instantiation:
    """What one layer's SVD instantiation decided (logged in the statistics)."""

    A: torch.Tensor
    B: torch.Tensor
    rank: int
    singular_values: list[float]
    candidates: list[int]
    kept: list[int]
    selected: list[int]
    novelty: list[float]


def buffer_svd(A_buf: torch.Tensor, B_buf: torch.Tensor, scaling: float):
    """SVD of :math:`\\Delta W = s\\,B_{buf}A_{buf}` via QR of B (never forms the d_out×d_in matrix)."""
    Qb, Rb = torch.linalg.qr(B_buf.double())
    U_m, S, Vh = torch.linalg.svd(scaling * (Rb @ A_buf.double()), full_matrices=False)
    return Qb @ U_m, S, Vh


def instantiate_from_buffer(A_buf: torch.Tensor, B_buf: torch.Tensor, scaling: float,
                            other_As: list[torch.Tensor] = (), tau_alloc: float = 0.08, tau_novel: float = 0.99,
                            rank_min: int = 4, rank_max: int = 10, tau_mode: str = "absolute",
                            novelty_filter: bool = True, compensate_scaling: bool = True) -> Instantiation:
    """Adaptive-rank expert from the buffer (reference §3.2).

    1. :math:`U\\Sigma V^\\top = \\Delta W_{buf}`; candidates: :math:`\\sigma_i > \\tau_{alloc}` (``absolute``) or
       :math:`\\sigma_i/\\sigma_1 > \\tau_{alloc}` (``relative``), largest first, at most r_max; none → the top one.
    2. Novelty against the row space Q of the pool's other experts' A:
       :math:`\\alpha_i = \\lVert v_i - QQ^\\top v_i\\rVert/\\lVert v_i\\rVert > \\tau_{novel}`; none kept → the top
       candidate.
    3. Fill with the next largest singular directions up to :math:`\\min(\\max(r_{min}, \\text{kept}), r_{max})`.
    4. :math:`B = U\\sqrt{\\Sigma'}`, :math:`A = \\sqrt{\\Sigma'}\\hat V^\\top` with :math:`\\hat V` the selected
       :math:`V` projected off Q and row-normalised. :math:`\\Sigma' = \\Sigma/s` with ``compensate_scaling``
       (the expert, used with scaling s, then reproduces the truncated buffer update exactly), else
       :math:`\\Sigma' = \\Sigma` (the literal reading: the expert starts at s times the truncated update).
    """
    U, S, Vh = buffer_svd(A_buf, B_buf, scaling)
    n = S.numel()
    score = S / S[0].clamp_min(1e-30) if tau_mode == "relative" else S
    candidates = [i for i in range(n) if score[i] > tau_alloc][:rank_max] or [0]
    Q = None
    if novelty_filter and len(other_As):
        Q = orthonormal_basis(torch.cat([a.detach() for a in other_As], 0)).double()
    if Q is not None:
        novelty = (Vh - (Vh @ Q) @ Q.t()).norm(dim=1) / Vh.norm(dim=1).clamp_min(1e-30)
        kept = [i for i in candidates if novelty[i] > tau_novel] or [candidates[0]]
    else:
        novelty = torch.ones(n, dtype=S.dtype)
        kept = list(candidates)
    target = min(max(rank_min, len(kept)), rank_max, n)
    selected = list(kept)
    for i in range(n):
        if len(selected) >= target:
            break
        if i not in selected:
            selected.append(i)
    selected.sort()
    V = Vh[selected]
    if Q is not None:
        V = V - (V @ Q) @ Q.t()
        V = V / V.norm(dim=1, keepdim=True).clamp_min(1e-30)
    sigma = S[selected] / (scaling if compensate_scaling else 1.0)
    root = sigma.clamp_min(0).sqrt()
    A = root.unsqueeze(1) * V
    B = U[:, selected] * root.unsqueeze(0)
    dead = sigma <= 1e-12  # a zero direction would give A = B = 0 and never train: keep A, like a LoRA init
    if dead.any():
        A[dead] = V[dead] / math.sqrt(V.shape[1])
    return Instantiation(A.to(A_buf.dtype), B.to(B_buf.dtype), len(selected), [float(s) for s in S],
                         candidates, kept, selected, [float(a) for a in novelty])


def orthogonality_energy(h_vis: torch.Tensor, A: torch.Tensor, B: torch.Tensor, scaling: float,
                         Q: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """:math:`\\mathrm{mean}_b\\,\\gamma_b\\lVert Q^\\top z_b\\rVert^2`, :math:`z_b = s\\,BAh_{vis,b}`."""
    z = scaling * (h_vis @ A.t()) @ B.t()
    energy = (z @ Q.to(z.dtype)).pow(2).sum(-1)
    return (gamma.to(energy.dtype) * energy).mean()


# -- the layer --------------------------------------------------------------------------------------------
@dataclass
class CramLoraConfig(MixtureLoraConfig):
    """``r``/``lora_alpha`` are the buffer's; ``mixture.router_kwargs`` carries max_slots, feature_dim,
    sigma and routing (the experts' own ranks are decided per layer at instantiation)."""

    @classmethod
    def layer_class(cls) -> type:
        return CramLoraLinear


class CramLoraLinear(MixtureLoraLinear):
    adapter_layer_names = ("lora_A", "lora_B", "lora_router", "lora_buffer_A", "lora_buffer_B")

    def update_layer(self, adapter_name, r, lora_alpha, config, **kwargs):
        from cvitkit.routers.registry import build_router

        if not hasattr(self, "lora_buffer_A"):  # the parent's __init__ calls this before we can add modules
            self.lora_buffer_A, self.lora_buffer_B = nn.ParameterDict(), nn.ParameterDict()
            self._ranks: dict[str, list[int]] = {}
            self._bases: dict[str, tuple] = {}
        spec = config.spec
        kw = dict(spec.router_kwargs)
        slots = int(kw["max_slots"])
        self.r[adapter_name], self.lora_alpha[adapter_name] = r, lora_alpha
        self.scaling[adapter_name] = lora_alpha / r
        self.lora_spec[adapter_name] = spec
        self.lora_dropout[adapter_name] = nn.Dropout(config.lora_dropout) if config.lora_dropout else nn.Identity()
        self.lora_A[adapter_name] = nn.ParameterList([nn.Parameter(torch.zeros(0, self.in_features))
                                                     for _ in range(slots)])
        self.lora_B[adapter_name] = nn.ParameterList([nn.Parameter(torch.zeros(self.out_features, 0))
                                                     for _ in range(slots)])
        self.lora_buffer_A[adapter_name] = nn.Parameter(torch.empty(r, self.in_features))
        self.lora_buffer_B[adapter_name] = nn.Parameter(torch.zeros(self.out_features, r))
        nn.init.kaiming_uniform_(self.lora_buffer_A[adapter_name], a=math.sqrt(5))
        self.lora_router[adapter_name] = build_router(spec.router, in_features=self.in_features,
                                                      out_features=self.out_features, n_experts=slots, rank=r, **kw)
        self._ranks[adapter_name] = [0] * slots
        self._move_adapter_to_device_of_base_layer(adapter_name)
        self.set_adapter(self.active_adapters)

    # -- slots --------------------------------------------------------------------------------------
    def ranks(self, adapter_name: str = "default") -> list[int]:
        return list(self._ranks[adapter_name])

    def centroid(self, slot: int, adapter_name: str = "default") -> nn.Parameter:
        return self.lora_router[adapter_name].centroids[slot]

    def begin_slot(self, slot: int, rank_max: int, adapter_name: str = "default") -> None:
        """Allocate ``slot`` at r_max rows (zeros) so the optimizer built for the task holds it."""
        ref = self.lora_buffer_A[adapter_name]
        self.lora_A[adapter_name][slot] = nn.Parameter(ref.new_zeros(rank_max, self.in_features))
        self.lora_B[adapter_name][slot] = nn.Parameter(ref.new_zeros(self.out_features, rank_max))
        self._ranks[adapter_name][slot] = 0
        self._bases.clear()

    @torch.no_grad()
    def set_expert(self, slot: int, A: torch.Tensor, B: torch.Tensor, adapter_name: str = "default") -> None:
        """Write an expert's factors into the first rows of its (padded) slot and record its rank."""
        pA, pB = self.lora_A[adapter_name][slot], self.lora_B[adapter_name][slot]
        r = A.shape[0]
        pA.zero_()
        pB.zero_()
        pA[:r].copy_(A)
        pB[:, :r].copy_(B)
        self._ranks[adapter_name][slot] = r
        self._bases.clear()

    def finalize_slot(self, slot: int, adapter_name: str = "default") -> None:
        """Shrink a trained slot to exactly its rank (the padding rows were never used)."""
        r = self._ranks[adapter_name][slot]
        for plist, cut in ((self.lora_A[adapter_name], lambda p: p[:r]),
                           (self.lora_B[adapter_name], lambda p: p[:, :r])):
            old = plist[slot]
            plist[slot] = nn.Parameter(cut(old.detach()).clone(), requires_grad=old.requires_grad)
        self._bases.clear()

    def expert(self, slot: int, adapter_name: str = "default") -> tuple[torch.Tensor, torch.Tensor]:
        r = self._ranks[adapter_name][slot]
        return self.lora_A[adapter_name][slot][:r], self.lora_B[adapter_name][slot][:, :r]

    @torch.no_grad()
    def reset_buffer(self, adapter_name: str = "default") -> None:
        nn.init.kaiming_uniform_(self.lora_buffer_A[adapter_name], a=math.sqrt(5))
        self.lora_buffer_B[adapter_name].zero_()

    def history_basis(self, slots: list[int], adapter_name: str = "default") -> torch.Tensor | None:
        """Orthonormal basis of the historical experts' A row spaces (square layers) or B column spaces."""
        key = (adapter_name, tuple(slots))
        if key not in self._bases:
            if self.in_features == self.out_features:
                rows = [self.expert(k, adapter_name)[0].detach() for k in slots]
            else:
                rows = [self.expert(k, adapter_name)[1].detach().t() for k in slots]
            self._bases[key] = orthonormal_basis(torch.cat(rows, 0)) if rows else None
        return self._bases[key]

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Committed slots have variable shapes: take the saved ones before the children copy values in.
        for name in list(self.lora_A):
            for k in range(len(self.lora_A[name])):
                for tag, plist in (("lora_A", self.lora_A[name]), ("lora_B", self.lora_B[name])):
                    saved = state_dict.get(f"{prefix}{tag}.{name}.{k}")
                    if saved is not None and saved.shape != plist[k].shape:
                        old = plist[k]
                        plist[k] = nn.Parameter(old.new_zeros(saved.shape), requires_grad=old.requires_grad)
                self._ranks[name][k] = self.lora_A[name][k].shape[0]
        self._bases.clear()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # -- forward ------------------------------------------------------------------------------------
    def _state(self) -> CramState | None:
        ctx = self.routing_context
        return None if ctx is None else ctx.extras.get("cram")

    def adapter_delta(self, x: torch.Tensor, adapter_name: str) -> torch.Tensor | None:
        state = self._state()
        if state is None or state.phase == "off":
            return None
        s = self.scaling[adapter_name]
        A_buf = self.lora_buffer_A[adapter_name]
        x = x.to(A_buf.dtype)
        xd = self.lora_dropout[adapter_name](x)
        if state.phase == "warmup":
            return s * (xd @ A_buf.t()) @ self.lora_buffer_B[adapter_name].t()
        slots = [k for k in state.pool_slots if self._ranks[adapter_name][k] > 0]
        if not slots:
            return None
        router = self.lora_router[adapter_name]
        gates = router.weights(state.batch_feature, slots)
        ctx = self.routing_context
        first = self.layer_name not in state.weights  # generate() runs a forward per token: record once
        state.weights[self.layer_name] = gates.detach()
        if ctx.record_stats and first:
            usage = torch.zeros(len(self.lora_A[adapter_name]))
            usage[slots] = gates.detach().float().cpu()
            ctx.add_stats(self.layer_name, usage)
        experts = [self.expert(k, adapter_name) for k in slots]
        A = torch.cat([a for a, _ in experts], 0)
        B = torch.cat([b for _, b in experts], 1)
        ranks = torch.tensor([a.shape[0] for a, _ in experts], device=gates.device)
        delta = s * ((xd @ A.t()) * gates.repeat_interleave(ranks)) @ B.t()
        if state.penalty and state.current in slots and state.history:
            self._orthogonality(x, state, adapter_name, router)
        return delta

    def _orthogonality(self, x, state: CramState, adapter_name: str, router) -> None:
        mask = state.image_mask
        if mask is None or mask.shape != x.shape[:2] or not mask.any():
            return
        Q = self.history_basis(state.history, adapter_name)
        if Q is None:
            return
        m = mask.to(x.dtype).unsqueeze(-1)
        # The visual hidden state is an input here, not something the penalty should reshape: detach it.
        h_vis = ((x * m).sum(1) / m.sum(1).clamp_min(1.0)).detach()
        slots = [k for k in state.pool_slots if self._ranks[adapter_name][k] > 0]
        per_sample = router.weights(state.sample_features, slots) if state.sample_features is not None else None
        hist = torch.tensor([k in state.history for k in slots], device=x.device)
        gamma = (per_sample[..., hist].sum(-1) if per_sample is not None and per_sample.dim() == 2
                 else torch.full((x.shape[0],), len(state.history) / len(slots), device=x.device))
        A, B = self.expert(state.current, adapter_name)
        energy = orthogonality_energy(h_vis, A, B, self.scaling[adapter_name], Q, gamma)
        self.routing_context.aux_losses.append(energy)
