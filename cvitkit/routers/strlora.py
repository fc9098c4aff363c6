"""StrLoRA's two-stage hierarchical router, with the EMA copy behind its routing-stability regulariser.

One :class:`StrLoRARouter` lives in every adapted layer (registry name ``"strlora"``); it returns the
token-wise expert weights of :class:`~cvitkit.adapters.mixture.MixtureLoraLinear`. With the layer input
:math:`h_i` (every sequence position, visual and text tokens alike, as in the release) and the
sample's routing text vector :math:`\\bar t` (``RoutingContext.sample_embedding``, detached):

**Stage 1 — task-aware expert selection** (per sample):

.. math:: p = \\mathrm{softmax}(W_r \\bar t),\\quad S = \\mathrm{TopK}(p, k),\\quad
          \\hat p_e = \\frac{p_e [e\\in S]}{\\sum_{j\\in S} p_j},\\quad
          \\tilde p = \\hat p - \\mathrm{sg}(p) + p,\\quad m_e = [e \\in S]

(:math:`W_r \\in \\mathbb{R}^{E\\times d_{te}}`, no bias, ``nn.Linear``'s default init as in the release).

**Stage 2 — token-wise expert weighting** inside :math:`S` (bilinear cross-modal attention):

.. math:: \\ell_{i,e} = \\frac{(W_q h_i)^\\top \\mathrm{diag}\\big(W_k \\mathrm{LN}(\\bar t)\\big)\\,
          \\hat P_e}{\\sqrt D},\\qquad \\hat P_e = P_e / \\lVert P_e\\rVert,\\qquad
          w_i = \\mathrm{softmax}(\\ell_i)\\ \\text{with}\\ \\ell_{i,e} = -\\infty\\ \\text{for}\\ m_e = 0

:math:`\\tilde w_i = \\mathrm{TopK}(w_i, k') - \\mathrm{sg}(w_i) + w_i` (hard renormalised top-k', k' = 1:
one-hot). LN has no affine parameters; :math:`W_q, W_k` are Xavier-uniform and
:math:`P \\sim \\mathcal{N}(0, 1/D)` row-normalised at init (release). ``attn_proj_dim <= 0`` replaces
the attention by the release's plain linear token router :math:`\\ell_i = W_s h_i`.

**How stage 1 enters the gates** (``stage1_gate``; the reference leaves it open). The release
(chanceche/StrCVIT ``peft/tuners/strlora.py``, checked) uses the stage-1 vector only through the mask
:math:`m` when stage 2 is on, so :math:`W_r` receives no gradient from the LM loss and stays at its
random initialisation: a fixed random hashing of :math:`\\bar t` into expert subsets. The kit's default
``"straight_through"`` keeps the release's forward values and lets the LM loss train :math:`W_r`:

.. math:: g_{i,e} = \\tilde w_{i,e}\\,\\big(1 + \\tilde p_e - \\mathrm{sg}(\\tilde p_e)\\big)

— forward :math:`g = \\tilde w` exactly (one-hot, weight 1), backward
:math:`\\partial\\mathcal{L}/\\partial\\tilde p_e = \\sum_i \\tilde w_{i,e}\\,
\\partial\\mathcal{L}/\\partial g_{i,e}`, the gradient the loss would give a sample-level gate on
expert e, passed to the dense :math:`p` by stage 1's straight-through. ``"product"`` uses
:math:`g = \\tilde w \\odot \\tilde p` (a hierarchical mixture: forward scaled by :math:`\\hat p_e`),
``"mask"`` reproduces the release (:math:`g = \\tilde w`).
Without stage 2 the gates are :math:`\\tilde p` for every token (the release's ``--subtopk 0`` path);
without stage 1 (``stage1=False`` or k ≥ E) every expert is selectable and :math:`W_r` is not built
(with stage 2 off as well, :math:`g = \\mathrm{softmax}(W_r\\bar t)`, the release's ``--topk 0``).

**Regulariser.** Persistent buffers hold EMA copies :math:`\\bar W_q, \\bar W_k, \\bar P` (or
:math:`\\bar W_s`) of the stage-2 router only; they are checkpointed with the adapter (their names
contain ``lora_router``) and so carried across chunks. On detached inputs,

.. math:: \\mathrm{KL}_i = \\sum_{e\\in S} \\bar p_{i,e}(\\log\\bar p_{i,e} - \\log p_{i,e}),\\qquad
          \\bar p_i = \\mathrm{softmax}(\\bar\\ell_i/\\tau),\\ p_i = \\mathrm{softmax}(\\ell_i/\\tau)

both masked by :math:`m`, teacher detached, averaged over all positions of the batch, times
:math:`\\lambda` (``RoutingContext.extras["distill_lambda"]``, set by the method), appended to
``context.aux_losses``. :meth:`StrLoRARouter.update_ema` applies
:math:`\\bar\\theta \\leftarrow \\beta\\bar\\theta + (1-\\beta)\\theta`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from cvitkit.errors import ConfigError
from cvitkit.routers.registry import register_router
from cvitkit.routers.topk import renormalised_topk, straight_through, topk_mask

STAGE1_GATES = ("straight_through", "product", "mask")


def bilinear_logits(h: torch.Tensor, text: torch.Tensor, W_q: torch.Tensor, W_k: torch.Tensor,
                    P: torch.Tensor) -> torch.Tensor:
    """:math:`\\ell_{i,e} = (W_q h_i)^\\top \\mathrm{diag}(W_k\\,\\mathrm{LN}(\\bar t))\\,\\hat P_e / \\sqrt D`.

    ``h`` (b, t, d_in), ``text`` (b, d_te) before the layer norm; returns (b, t, E).
    """
    key = F.layer_norm(text, text.shape[-1:]) @ W_k.t()
    query = h @ W_q.t()
    return (query * key.unsqueeze(1)) @ F.normalize(P, dim=-1).t() / math.sqrt(W_q.shape[0])


def masked_log_softmax(logits: torch.Tensor, mask: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """Log-softmax of ``logits / tau`` over the experts where ``mask`` is true (−inf elsewhere)."""
    return torch.log_softmax((logits / tau).masked_fill(~mask, float("-inf")), dim=-1)


def router_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor,
              tau: float = 1.0) -> torch.Tensor:
    """Per-position :math:`\\mathrm{KL}(\\bar p \\| p)` over the selected experts; the teacher is detached."""
    mask = mask.expand_as(student_logits)
    log_p = masked_log_softmax(student_logits, mask, tau).masked_fill(~mask, 0.0)
    log_t = masked_log_softmax(teacher_logits.detach(), mask, tau).masked_fill(~mask, 0.0)
    return (log_t.exp() * (log_t - log_p)).masked_fill(~mask, 0.0).sum(-1)


@register_router("strlora")
class StrLoRARouter(nn.Module):
    """Two-stage StrLoRA router of one adapted layer (see the module docstring for the equations).

    Parameters
    ----------
    in_features : width :math:`d_{in}` of the adapted layer's input.
    n_experts : experts E.
    text_dim : width :math:`d_{te}` of the routing text vector (the LM's hidden size).
    top_k, sub_top_k : stage-1 subset size k and stage-2 hard top-k' inside it.
    attn_proj_dim : D of the cross-modal attention; ≤ 0 uses a linear token router.
    stage1, stage2 : ablation switches.
    stage1_gate : ``straight_through`` (default), ``product`` or ``mask`` (release).
    ema : keep EMA buffers of the stage-2 router (the regulariser's teacher).
    distill_tau : KL temperature τ.
    """

    def __init__(self, in_features: int, n_experts: int, text_dim: int, top_k: int = 2, sub_top_k: int = 1,
                 attn_proj_dim: int = 64, stage1: bool = True, stage2: bool = True,
                 stage1_gate: str = "straight_through", ema: bool = True, distill_tau: float = 1.0, **_):
        super().__init__()
        if stage1_gate not in STAGE1_GATES:
            raise ConfigError(f"stage1_gate must be one of {STAGE1_GATES}, got {stage1_gate!r}.")
        if not 1 <= top_k or not 1 <= sub_top_k or distill_tau <= 0:
            raise ConfigError("top_k and sub_top_k must be ≥ 1 and distill_tau > 0.")
        self.n_experts, self.stage1_gate, self.tau = n_experts, stage1_gate, distill_tau
        self.top_k = min(top_k, n_experts) if stage1 else n_experts
        self.sparse_stage1 = self.top_k < n_experts
        self.sub_top_k = sub_top_k
        self.kind = ("attention" if attn_proj_dim > 0 else "linear") if stage2 else "none"
        # W_r is only built where it acts: a sparse subset, or the dense weights when stage 2 is off.
        self.text_router = None
        if self.sparse_stage1 or self.kind == "none":
            self.text_router = nn.Parameter(torch.empty(n_experts, text_dim))
            nn.init.kaiming_uniform_(self.text_router, a=math.sqrt(5))  # nn.Linear's default (release)
        if self.kind == "attention":
            self.query = nn.Parameter(nn.init.xavier_uniform_(torch.empty(attn_proj_dim, in_features)))
            self.key = nn.Parameter(nn.init.xavier_uniform_(torch.empty(attn_proj_dim, text_dim)))
            proto = torch.randn(n_experts, attn_proj_dim) * attn_proj_dim ** -0.5
            self.prototypes = nn.Parameter(F.normalize(proto, dim=-1))
        elif self.kind == "linear":
            self.token_router = nn.Parameter(torch.empty(n_experts, in_features))
            nn.init.kaiming_uniform_(self.token_router, a=math.sqrt(5))
        self.has_ema = ema and self.kind != "none"
        if self.has_ema:
            for name, p in self.stage2_parameters().items():
                self.register_buffer(f"ema_{name}", p.detach().clone())
            # 0 until the EMA is first set from the live router (the first chunk with the regulariser).
            self.register_buffer("ema_ready", torch.zeros(()))

    # -- parameters -------------------------------------------------------------------------------
    def stage2_parameters(self) -> dict[str, nn.Parameter]:
        names = {"attention": ("query", "key", "prototypes"), "linear": ("token_router",), "none": ()}[self.kind]
        return {n: getattr(self, n) for n in names}

    def ema_parameters(self) -> dict[str, torch.Tensor]:
        return {n: getattr(self, f"ema_{n}") for n in self.stage2_parameters()} if self.has_ema else {}

    @torch.no_grad()
    def reset_ema(self) -> None:
        """Set the EMA copy to the live stage-2 router (the reference's "initialised from the loaded weights")."""
        for name, p in self.stage2_parameters().items():
            getattr(self, f"ema_{name}").copy_(p.detach())
        if self.has_ema:
            self.ema_ready.fill_(1.0)

    @torch.no_grad()
    def update_ema(self, beta: float) -> None:
        """:math:`\\bar\\theta \\leftarrow \\beta\\bar\\theta + (1-\\beta)\\theta` for W_q, W_k, P (or W_s)."""
        for name, p in self.stage2_parameters().items():
            ema = getattr(self, f"ema_{name}")
            ema.mul_(beta).add_(p.detach().to(ema.dtype), alpha=1.0 - beta)

    # -- routing ----------------------------------------------------------------------------------
    def stage1(self, text: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """(straight-through weights :math:`\\tilde p` or None, selection mask m) per sample, (b, E)."""
        if self.text_router is None:
            return None, torch.ones(text.shape[0], self.n_experts, dtype=torch.bool, device=text.device)
        probs = torch.softmax(text @ self.text_router.t(), dim=-1)
        if not self.sparse_stage1:
            return probs, torch.ones_like(probs, dtype=torch.bool)
        return straight_through(renormalised_topk(probs, self.top_k), probs), topk_mask(probs, self.top_k).bool()

    def stage2_logits(self, h: torch.Tensor, text: torch.Tensor, teacher: bool = False) -> torch.Tensor:
        params = self.ema_parameters() if teacher else self.stage2_parameters()
        if self.kind == "attention":
            return bilinear_logits(h, text, params["query"], params["key"], params["prototypes"])
        return h @ params["token_router"].t()

    def distill_loss(self, h: torch.Tensor, text: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean over positions of KL(EMA teacher ‖ live router) on detached inputs (without λ)."""
        h, text = h.detach(), text.detach()
        with torch.no_grad():
            teacher = self.stage2_logits(h, text, teacher=True)
        student = self.stage2_logits(h, text)
        return router_kl(student, teacher, mask.unsqueeze(1), self.tau).mean()

    def forward(self, x: torch.Tensor, ctx, layer_name: str = "") -> torch.Tensor:
        if ctx is None or ctx.sample_embedding is None:
            raise RuntimeError("the StrLoRA router needs RoutingContext.sample_embedding (the mean instruction "
                               "embedding); call method.prepare_batch(batch, ...) before the forward pass.")
        text = ctx.sample_embedding.to(device=x.device, dtype=x.dtype)
        if text.shape[0] != x.shape[0]:
            raise RuntimeError(f"routing text batch {text.shape[0]} does not match the layer input batch {x.shape[0]}.")
        st1, mask = self.stage1(text)
        if self.kind == "none":
            gates = st1.unsqueeze(1)  # W_r always exists without stage 2
            selected = gates.detach()
        else:
            logits = self.stage2_logits(x, text).masked_fill(~mask.unsqueeze(1), float("-inf"))
            w = torch.softmax(logits, dim=-1)
            if self.sub_top_k < self.top_k:  # k' ≥ k: a soft mixture inside the subset
                w = straight_through(renormalised_topk(w, self.sub_top_k), w)
            selected = w.detach()
            if st1 is None or self.stage1_gate == "mask":
                gates = w
            elif self.stage1_gate == "product":
                gates = w * st1.unsqueeze(1)
            else:  # (p̃ − sg(p̃)) is exactly 0 in the forward pass, so the gates keep w's values
                gates = w * ((st1 - st1.detach()) + 1.0).unsqueeze(1)
            lam = float(ctx.extras.get("distill_lambda", 0.0))
            if lam > 0 and self.has_ema and torch.is_grad_enabled() and self.training:
                ctx.aux_losses.append(lam * self.distill_loss(x, text, mask))
        if ctx.record_stats:
            ctx.add_stats(layer_name, selected.expand(*x.shape[:2], -1).reshape(-1, self.n_experts).sum(0))
            ctx.add_stats(f"{layer_name}{STAGE1_SUFFIX}", mask.float().sum(0))
        return gates


#: Suffix of the statistics key under which a layer reports its stage-1 selections.
STAGE1_SUFFIX = "::stage1"
