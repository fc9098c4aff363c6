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

from cvitkit.lm_loss import forward_with_loss

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


def measure_step(model, inputs: dict, optimizer_factory=None, answer_logits_only: bool = True) -> dict:
    """Run one training step and count bytes: weights, trainable state and saved activations.

    Activations are the tensors autograd saves for backward, counted once per storage (views of the
    same storage and frozen weights saved by reference are not double-counted). The step computes logits
    at answer positions only, as the trainer does; ``answer_logits_only=False`` measures the plain
    ``model(..., labels=labels)`` step instead (logits at every position).
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
        loss = forward_with_loss(model, inputs)[1] if answer_logits_only else model(**inputs).loss
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


# ---------------------------------------------------------------------------------------------------
# Measuring the tiny model at several precisions, and sweeping the estimate (notebook 21)
# ---------------------------------------------------------------------------------------------------

PRECISIONS = ("fp32", "bf16", "4bit")


def _tiny_batch(processor, batch: int, seed: int = 0) -> dict:
    """``batch`` synthetic image-question-answer samples, loss on the answer tokens only."""
    from PIL import Image, ImageDraw

    from cvitkit.models.prompt import render_vicuna_v1

    size = processor.image_processor.crop_size["height"]
    colours = ["red", "green", "blue", "orange"]
    images, texts = [], []
    for i in range(batch):
        image = Image.new("RGB", (size, size), "white")
        colour = colours[(seed + i) % len(colours)]
        ImageDraw.Draw(image).ellipse([size // 4, size // 4, 3 * size // 4, 3 * size // 4], fill=colour)
        prompt = render_vicuna_v1([("user", "<image>\nWhat colour is the circle?")], add_generation_prompt=True)
        images.append(image)
        texts.append(f"{prompt} {colour}</s>")
    inputs = dict(processor(text=texts, images=images, return_tensors="pt", padding=True))
    inputs["labels"] = inputs["input_ids"].masked_fill(inputs["attention_mask"] == 0, -100)
    return inputs


def _quant_state_bytes(model) -> int:
    total = 0
    for p in model.parameters():
        state = getattr(p, "quant_state", None)
        while state is not None:
            if getattr(state, "absmax", None) is not None:
                total += _tensor_bytes(state.absmax)
            state = getattr(state, "state2", None)  # double quantisation: the absmax's own constants
    return total


def tiny_training_step(preset: str = "micro", precision: str = "fp32", checkpointing: bool = False, batch: int = 4,
                       rank: int = 8, steps: int = 3, seed: int = 0) -> dict:
    """Measure a LoRA training step of the tiny LLaVA with its base in ``precision`` (fp32, bf16, 4bit).

    Returns the counted bytes of :func:`measure_step` (weights, trainable state, saved activations;
    ``total`` is the step's counted peak), the median wall time of ``steps`` further steps in ms, the
    trainable parameter count and the last loss. 4-bit loads the model through the same
    :func:`~cvitkit.models.load_model` path as real checkpoints (nf4, double quantisation).
    """
    import statistics
    import time

    from cvitkit.adapters import add_lora
    from cvitkit.errors import ConfigError
    from cvitkit.models import enable_training_mode
    from cvitkit.models.spec import ModelConfig, load_from_config

    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {PRECISIONS}, got {precision!r}.")
    torch.manual_seed(seed)
    model, processor = load_from_config(ModelConfig(source="tiny", preset=preset, seed=seed,
                                                    quantization="4bit" if precision == "4bit" else "none"))
    if precision == "bf16":
        model = model.to(torch.bfloat16)
    enable_training_mode(model, gradient_checkpointing=checkpointing)
    # peft keeps the adapter in fp32 over a bf16 base (autocast_adapter_dtype), as QLoRA does over nf4
    model = add_lora(model, rank, 2 * rank, 0.0, "all_linear", train_projector=False)
    model.train()  # transformers only checkpoints layers in training mode
    inputs = _tiny_batch(processor, batch, seed)
    if precision == "bf16":
        inputs["pixel_values"] = inputs["pixel_values"].to(torch.bfloat16)
    counted = measure_step(model, inputs)
    # nf4 block constants live in quant_state, not in parameters or buffers: add them to the weights
    extra = _quant_state_bytes(model)
    counted.update(weights=counted["weights"] + extra, total=counted["total"] + extra, quant_state=extra)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    times, loss = [], None
    for _ in range(steps):
        t0 = time.perf_counter()
        _, loss = forward_with_loss(model, inputs)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
    return {"precision": precision, "checkpointing": checkpointing, **counted,
            "step_ms": 1000 * statistics.median(times),
            "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "loss": float(loss.detach()) if loss is not None else None}


def sweep_estimates(arch: Architecture, budget_gib: float = 12.0, reserve_gib: float = 1.0,
                    quantizations=("none", "8bit", "4bit"), checkpointing=(False, True), batches=(1, 4, 8),
                    lora_rank: int = 128, seq: int = 700) -> list[dict]:
    """:func:`estimate` over a grid of settings, each row marked ``fits`` when its total stays under
    ``budget_gib`` minus ``reserve_gib`` (CUDA context, allocator fragmentation: not modelled)."""
    rows = []
    for quantization in quantizations:
        for ckpt in checkpointing:
            for batch in batches:
                est = estimate(arch, quantization, lora_rank=lora_rank, batch=batch, seq=seq, checkpointing=ckpt)
                rows.append({"quantization": quantization, "checkpointing": ckpt, "batch": batch, **est,
                             "fits": est["total"] <= budget_gib - reserve_gib})
    return rows
