"""Benchmark: memory of one LoRA training step (fp32, bf16, 4-bit base) and the LLaVA-1.5-7B estimate.

    python bench/bench_memory.py --size small     # results/bench/memory.csv
    python bench/bench_memory.py --size tiny --out /tmp/bench

Part 1 measures the tiny LLaVA on CPU (``cvitkit.memory.tiny_training_step``: bytes of weights,
trainable state, gradients, AdamW state and the tensors autograd saves), with and without gradient
checkpointing. Part 2 applies the same accounting in closed form (``cvitkit.memory.estimate``) to the
tiny model's own dimensions — the ratio estimate / measured validates the formula — and then to
LLaVA-1.5-7B with a rank-128 QLoRA, batch 1, 700 tokens: which settings fit a 12 GB GPU (1 GiB kept for
the CUDA context, which the formula does not model).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

#: (tiny preset, batch, LoRA rank, timed steps)
SIZES = {"tiny": ("micro", 2, 8, 1), "small": ("tiny-3m", 4, 32, 2)}
MiB, GiB = 2 ** 20, 2 ** 30
#: measured precision -> (estimate's weight quantization, activation bytes per value on this CPU)
ESTIMATE_AS = {"fp32": None, "bf16": ("none", 2), "4bit": ("4bit", 4)}


def tiny_architecture(preset: str):
    """The :class:`cvitkit.memory.Architecture` of a tiny LLaVA preset (for validating the formula)."""
    from cvitkit.memory import Architecture
    from cvitkit.models.tiny import resolve_tiny_config

    c = resolve_tiny_config(preset)
    from cvitkit.models import build_tiny_llava

    _, processor = build_tiny_llava(preset)
    return Architecture(preset, c.text_layers, c.text_hidden, c.text_intermediate, c.text_heads, len(processor.tokenizer),
                        c.vision_layers, c.vision_hidden, 2 * c.vision_hidden, (c.image_size // c.patch_size) ** 2)


def measured_seq(preset: str, batch: int) -> int:
    from cvitkit.memory import _tiny_batch
    from cvitkit.models import build_tiny_llava

    return int(_tiny_batch(build_tiny_llava(preset)[1], batch)["input_ids"].shape[1])


def main(argv=None) -> int:
    from cvitkit.bench import bench_parser, machine_info, print_table, size_key, write_csv
    from cvitkit.memory import LLAVA_15_7B, activation_bytes, estimate, tiny_training_step, weight_bytes

    args = bench_parser(__doc__).parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    size = size_key(args.size)
    preset, batch, rank, steps = SIZES[size]
    arch, seq = tiny_architecture(preset), measured_seq(preset, batch)
    precisions = [p for p in ESTIMATE_AS if p != "4bit" or importlib.util.find_spec("bitsandbytes")]
    rows = []
    print(f"part 1: one LoRA step of {preset} (rank {rank}, batch {batch} x {seq} tokens), bytes counted per tensor")
    for precision in precisions:
        for ckpt in (False, True):
            m = tiny_training_step(preset, precision, ckpt, batch=batch, rank=rank, steps=steps)
            state = m["trainable"] + m["gradients"] + m["optimizer_state"]
            row = {"part": "measured", "model": preset, "precision": precision, "checkpointing": ckpt,
                   "batch": batch, "seq": seq, "weights_mib": m["weights"] / MiB, "adapter_state_mib": state / MiB,
                   "activations_mib": m["activations"] / MiB, "total_mib": m["total"] / MiB,
                   "step_ms": m["step_ms"], "trainable_params": m["trainable_parameters"]}
            if ESTIMATE_AS[precision]:
                quant, bytes_per = ESTIMATE_AS[precision]
                w = sum(weight_bytes(arch, quant).values())
                a = activation_bytes(arch, batch, seq, ckpt, bytes_per=bytes_per, lora_rank=rank)
                row.update(estimate_weights_ratio=w / m["weights"], estimate_activations_ratio=a / m["activations"],
                           estimate_adapter_ratio=16.0 * arch.lora_params(rank) / state)
            rows.append(row)
    print_table(rows, ["precision", "checkpointing", "weights_mib", "adapter_state_mib", "activations_mib",
                       "total_mib", "step_ms", "estimate_weights_ratio", "estimate_adapter_ratio",
                       "estimate_activations_ratio"])
    print(f"\npart 2: {LLAVA_15_7B.name}, LoRA r=128 on every LM linear + projector, batch 1, 700 tokens (estimate)")
    est_rows = []
    for quant in ("none", "8bit", "4bit"):
        for ckpt in (False, True):
            e = estimate(LLAVA_15_7B, quant, lora_rank=128, batch=1, seq=700, checkpointing=ckpt)
            weights = sum(v for k, v in e.items() if k.startswith("weights/"))
            est_rows.append({"part": "estimate", "model": LLAVA_15_7B.name, "precision": quant, "checkpointing": ckpt,
                             "batch": 1, "seq": 700, "weights_mib": weights * 1024,
                             "adapter_state_mib": e["adapter_and_optimizer"] * 1024,
                             "activations_mib": e["activations"] * 1024, "total_mib": e["total"] * 1024,
                             "total_gib": e["total"], "fits_12gb": e["total"] <= 11.0,
                             "trainable_params": e["trainable_parameters"]})
    print_table(est_rows, ["precision", "checkpointing", "weights_mib", "adapter_state_mib", "activations_mib",
                           "total_gib", "fits_12gb"])
    fits = [f"{r['precision']}{' + checkpointing' if r['checkpointing'] else ''}" for r in est_rows if r["fits_12gb"]]
    print(f"fits 12 GB at batch 1 (total <= 11 GiB): {', '.join(fits) or 'none'}")
    write_csv(args.out, "memory", rows + est_rows, machine_info())
    return 0


if __name__ == "__main__":
    sys.exit(main())
