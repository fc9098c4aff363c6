"""Training-memory accounting: measure it on small models, estimate it for real ones.

Where the memory of a (Q)LoRA training step goes:

* **base weights** — frozen; 2 bytes/parameter in bf16, about 0.5 + 0.016 bytes/parameter in nf4 with
  double quantisation (a 4-bit code per weight, one 8-bit absmax per 64 weights, itself quantised
  with one fp32 constant per 256 blocks); modules kept unquantised (vision tower, projector,
  ``lm_head``, embeddings, norms) stay in bf16;
* **adapter state** — trainable parameters in fp32 (4 bytes), their gradients (4) and AdamW's two
  moments (8): 16 bytes per trainable parameter;
* **activations** — tensors saved by autograd for the backward pass. Without checkpointing every
  layer keeps its intermediate tensors; with gradient checkpointing each layer keeps only its input
  and one layer's intermediates are rebuilt at a time.

:func:`measure_step` measures the last two exactly on any model, by counting the bytes of the
tensors autograd saves (``torch.autograd.graph.saved_tensors_hooks``) and of parameters, gradients
and optimizer states — no allocator or GPU needed, so it runs on CPU. :func:`estimate` applies the
same accounting in closed form to a transformer's dimensions; the tests check the closed form
against measurements on tiny models, and :data:`LLAVA_15_7B` gives the paper-scale estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

GiB = 1024 ** 3


@dataclass(frozen=True)
class Architecture:
    """Dimensions of a LLaVA-style model (language model + vision tower + 2-layer projector)."""

    name: str
    layers: int
    hidden: int
    intermediate: int
    heads: int
    vocab: int
    vision_layers: int
    vision_hidden: int
    vision_intermediate: int
    image_tokens: int

    def lm_linear_params(self) -> int:
        attn = 4 * self.hidden * self.hidden
        mlp = 3 * self.hidden * self.intermediate
        return self.layers * (attn + mlp)

    def lm_other_params(self) -> int:
        return 2 * self.vocab * self.hidden + (2 * self.layers + 1) * self.hidden  # embeddings, lm_head, norms

    def vision_params(self) -> int:
        per_layer = 4 * self.vision_hidden ** 2 + 2 * self.vision_hidden * self.vision_intermediate
        return self.vision_layers * per_layer

    def projector_params(self) -> int:
        return self.vision_hidden * self.hidden + self.hidden * self.hidden + 2 * self.hidden

    def lora_params(self, rank: int, targets: str = "all_linear") -> int:
        """Parameters of a rank-r LoRA on the language model's linear layers."""
        h, f = self.hidden, self.intermediate
        per = {"q": 2 * h, "k": 2 * h, "v": 2 * h, "o": 2 * h, "gate": h + f, "up": h + f, "down": f + h}
        keys = {"attention": "qkvo", "attention_qv": "qv", "all_linear": None}[targets]
        names = per if keys is None else {k: per[k] for k in keys}
        return self.layers * rank * sum(names.values())


#: LLaVA-1.5-7B: Vicuna-7B (32 × 4096, MLP 11008, 32 heads, vocab 32000) + CLIP ViT-L/14-336
#: (24 × 1024, MLP 4096; 576 patch tokens) + 2-layer MLP projector.
LLAVA_15_7B = Architecture("LLaVA-1.5-7B", 32, 4096, 11008, 32, 32000, 24, 1024, 4096, 576)


def weight_bytes(arch: Architecture, quantization: str) -> dict[str, float]:
    """Frozen weights: quantised LM linears, everything else in bf16."""
    per_param = {"none": 2.0, "8bit": 1.0 + 4 / 64, "4bit": 0.5 + 1 / 64 + 4 / (64 * 256)}[quantization]
    return {"lm_linear": arch.lm_linear_params() * per_param,
            "lm_embeddings_head_norms": arch.lm_other_params() * 2.0,
            "vision_tower_projector": (arch.vision_params() + arch.projector_params()) * 2.0}


def activation_bytes(arch: Architecture, batch: int, seq: int, checkpointing: bool, bytes_per: int = 2,
                     lora_rank: int = 0) -> float:
    """Bytes autograd keeps for backward through the language model (bf16 activations).

    Per layer and token, a Llama block with frozen weights saves (in units of ``hidden`` values):
    the two RMSNorm inputs and outputs (4), q, k, v and the attention output (4, SDPA saves its
    inputs and output), the MLP's gate and up outputs, the SiLU output and their product
    (4·intermediate/hidden), plus the LoRA down-projections (rank values per adapted linear).
    Attention scores are not kept (fused SDPA recomputes them). With checkpointing a layer keeps its
    input (1) and one layer is recomputed at a time. The vision tower runs without gradients.
    """
    tokens = batch * seq
    per_layer = (8 * arch.hidden + 4 * arch.intermediate + 7 * lora_rank) * tokens * bytes_per
    logits = tokens * arch.vocab * 4  # fp32 logits for the loss
    if checkpointing:
        # layer inputs kept through the forward pass, plus one layer rebuilt during backward
        return arch.layers * tokens * arch.hidden * bytes_per + per_layer + logits
    return arch.layers * per_layer + logits


def estimate(arch: Architecture, quantization: str = "4bit", lora_rank: int = 128, targets: str = "all_linear",
             batch: int = 1, seq: int = 700, checkpointing: bool = True, train_projector: bool = True) -> dict:
    """Closed-form memory of one (Q)LoRA training step, in GiB per component and in total."""
    weights = weight_bytes(arch, quantization)
    trainable = arch.lora_params(lora_rank, targets) + (arch.projector_params() if train_projector else 0)
    adapter = trainable * 16.0  # fp32 parameter + gradient + two AdamW moments
    acts = activation_bytes(arch, batch, seq, checkpointing, lora_rank=lora_rank)
    parts = {**{f"weights/{k}": v for k, v in weights.items()}, "adapter_and_optimizer": adapter,
             "activations": acts}
    out = {k: v / GiB for k, v in parts.items()}
    out["total"] = sum(parts.values()) / GiB
    out["trainable_parameters"] = trainable
    return out


def _tensor_bytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def measure_step(model, inputs: dict, optimizer_factory=None) -> dict:
    """Run one training step and count bytes: weights, trainable state and saved activations.

    Activations are the tensors autograd saves for backward, counted once per storage (views of the
    same storage and frozen weights saved by reference are not double-counted).
    """
    seen: dict[int, int] = {}
    param_ptrs = {p.untyped_storage().data_ptr() for p in model.parameters()}
    param_ptrs |= {b.untyped_storage().data_ptr() for b in model.buffers()}

    def pack(t):
        ptr = t.untyped_storage().data_ptr()
        if ptr not in param_ptrs and ptr not in seen:
            seen[ptr] = t.untyped_storage().nbytes()
        return t

    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = (optimizer_factory or (lambda ps: torch.optim.AdamW(ps, lr=1e-4)))(trainable)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = model(**inputs).loss
    loss.backward()
    optimizer.step()
    state_bytes = sum(_tensor_bytes(v) for s in optimizer.state.values() for v in s.values() if torch.is_tensor(v))
    weights = sum(_tensor_bytes(p) for p in model.parameters() if not p.requires_grad)
    weights += sum(_tensor_bytes(b) for b in model.buffers())
    out = {"weights": weights,
           "trainable": sum(_tensor_bytes(p) for p in trainable),
           "gradients": sum(_tensor_bytes(p.grad) for p in trainable if p.grad is not None),
           "optimizer_state": state_bytes,
           "activations": sum(seen.values())}
    optimizer.zero_grad(set_to_none=True)
    out["total"] = sum(out.values())
    return out
