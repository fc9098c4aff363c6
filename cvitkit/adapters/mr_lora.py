"""MR-LoRA's adapter bookkeeping: per-expert projector copies and closed-form parameter counts.

The LLaVA model holds one projector module; MR-LoRA gives every expert (and the router) its own
projector. The method keeps the copies as tensors and writes the right one into the module (in
place, so optimizers keep their parameter references) before training or using an adapter.
"""

from __future__ import annotations

import torch

PROJECTOR = "multi_modal_projector"


def projector_module(model) -> torch.nn.Module:
    """The model's multimodal projector (found by name, through any peft wrapping)."""
    for name, module in model.named_modules():
        if name.endswith(PROJECTOR):
            return module
    raise ValueError("the model has no multi_modal_projector (MR-LoRA needs a LLaVA-style model).")


def projector_state(model) -> dict[str, torch.Tensor]:
    """A detached copy of the projector's parameters, on their device."""
    return {n: p.detach().clone() for n, p in projector_module(model).named_parameters()}


@torch.no_grad()
def load_projector(model, state: dict[str, torch.Tensor]) -> None:
    """Write ``state`` into the projector's parameters in place."""
    for n, p in projector_module(model).named_parameters():
        p.copy_(state[n])


def lora_parameters(shapes: list[tuple[int, int]], rank: int) -> int:
    """Parameters of one LoRA adapter: :math:`\\sum_\\ell r (d_{in} + d_{out})` over adapted linears."""
    return sum(rank * (d_in + d_out) for d_in, d_out in shapes)


def expected_parameters(shapes, n_experts: int, rank: int, router_rank: int, projector: int,
                        mllm_router: bool = True) -> dict[str, int]:
    """Closed-form counts for T = ``n_experts`` experts.

    ``adapter_total`` is what the model holds and the trainer counts (T expert LoRAs + the router LoRA
    + one projector module); ``stage_trainable`` is what a stage from the second on trains (its expert,
    its projector, the router; stage 1 trains no router); ``stored_total`` adds the projector copies
    kept in the method state (one per expert, one for the router).
    """
    expert = lora_parameters(shapes, rank)
    router = lora_parameters(shapes, router_rank) if mllm_router else 0
    return {"expert": expert, "router": router, "projector": projector,
            "adapter_total": n_experts * expert + router + projector,
            "stage_trainable": expert + projector + router,
            "stored_total": n_experts * (expert + projector) + (router + projector if mllm_router else 0)}
