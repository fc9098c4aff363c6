"""The training loss of instruction tuning, with logits computed only where an answer token is predicted.

Instruction tuning supervises the answer tokens only (``labels`` are ``-100`` elsewhere), yet a plain
``model(..., labels=labels)`` projects *every* position onto the vocabulary: image tokens, prompt and
padding. For a LLaVA sequence that is 93 positions for 2 supervised tokens (the kit's tiny model) or
about 600 for 5-20 (LLaVA-1.5, 576 image tokens, 32 K vocabulary: a float32 logit tensor of
~77 MB per sample, kept for the backward pass). Transformers' ``logits_to_keep`` with a boolean
``(batch, sequence)`` mask projects only the kept positions and returns them flattened, so the kit
keeps exactly the positions whose *next* token is supervised and computes the loss itself:

.. math::

    \\mathcal{L} = \\frac{1}{|S|} \\sum_{(b, i) \\in S} -\\log p_\\theta(y_{b,i+1} \\mid y_{b,\\le i}),
    \\qquad S = \\{(b, i) : \\text{labels}_{b,i+1} \\neq -100\\}

which is the same mean as transformers' causal-LM loss. Models whose ``forward`` has no
``logits_to_keep`` argument get ``labels`` and their own loss, as before.
"""

from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


def next_token_targets(labels: torch.Tensor) -> torch.Tensor:
    """``labels`` shifted left by one: position ``i`` is trained to predict ``labels[:, i + 1]``."""
    targets = labels.new_full(labels.shape, IGNORE_INDEX)
    targets[:, :-1] = labels[:, 1:]
    return targets


def supports_logits_to_keep(model) -> bool:
    """Whether the (peft-wrapped) model's forward accepts ``logits_to_keep``."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "logits_to_keep" in inspect.signature(inner.forward).parameters


def answer_inputs(model, labels: torch.Tensor) -> dict:
    """Keyword inputs that make ``model`` compute logits only at supervised positions
    (``{"logits_to_keep": mask}``), or ``{"labels": labels}`` for a model that cannot."""
    if not supports_logits_to_keep(model):
        return {"labels": labels}
    return {"logits_to_keep": next_token_targets(labels) != IGNORE_INDEX}


def answer_loss(outputs, labels: torch.Tensor, inputs: dict) -> torch.Tensor:
    """Mean next-token cross-entropy over the supervised positions for outputs of a forward run with
    :func:`answer_inputs`; the model's own ``outputs.loss`` where it was given the labels instead."""
    keep = inputs.get("logits_to_keep")
    if keep is None:
        return outputs.loss
    targets = next_token_targets(labels.to(keep.device))[keep]
    if targets.numel() == 0:  # every answer truncated away: no signal, but no NaN either
        return outputs.logits.sum() * 0
    return F.cross_entropy(outputs.logits.float(), targets)


def forward_with_loss(model, inputs: dict) -> tuple[object, torch.Tensor]:
    """``(outputs, loss)`` for ``inputs`` that hold ``labels``: one forward with answer-only logits."""
    inputs = dict(inputs)
    labels = inputs.pop("labels")
    extra = answer_inputs(model, labels)
    outputs = model(**inputs, **extra)
    return outputs, answer_loss(outputs, labels, extra)


def answer_logits(outputs, inputs: dict) -> torch.Tensor:
    """The logits at supervised positions, ``(n_supervised, vocab)``, however the forward was run."""
    if inputs.get("logits_to_keep") is not None:
        return outputs.logits
    return outputs.logits[next_token_targets(inputs["labels"]) != IGNORE_INDEX]
