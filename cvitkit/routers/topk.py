"""Top-k selection helpers shared by the sparse routers (BranchLoRA, StrLoRA)."""

from __future__ import annotations

import torch


def topk_mask(probs: torch.Tensor, k: int) -> torch.Tensor:
    """0/1 mask of the k largest entries along the last axis (exactly k ones; ties broken by index)."""
    idx = probs.topk(k, dim=-1).indices
    return torch.zeros_like(probs).scatter_(-1, idx, 1.0)


def renormalised_topk(probs: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k largest probabilities and rescale them to sum to one; zeros elsewhere."""
    kept = probs * topk_mask(probs, k)
    return kept / kept.sum(-1, keepdim=True).clamp_min(1e-12)


def straight_through(hard: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """Forward value ``hard``, gradient of ``soft``: :math:`\\hat p - \\mathrm{sg}(p) + p`."""
    return hard.detach() - soft.detach() + soft if soft.requires_grad else hard


def topk_straight_through(probs: torch.Tensor, k: int) -> torch.Tensor:
    """Renormalised top-k in the forward pass with the dense probabilities' gradient (straight-through)."""
    return straight_through(renormalised_topk(probs, k), probs)
