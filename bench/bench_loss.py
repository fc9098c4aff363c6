"""Benchmark: a LoRA training step with logits at answer positions only, against logits at every position.

    python bench/bench_loss.py --size small      # the figures in results/bench/loss.csv
    python bench/bench_loss.py --size tiny --out /tmp/bench

Reference row ``full_logits``: the method's batch given to the model with ``labels`` (transformers
projects every position onto the vocabulary and computes its own loss). Row ``answer_logits``: what
the trainer does (``cvitkit.lm_loss``), logits only where the next token is supervised. Same model,
batch and LoRA-FT (mini preset) for both; timed round-robin, ratio = median over rounds of
(row step / reference step). Saved activations are counted by ``cvitkit.memory.measure_step`` on a
fresh copy of each. Both give the same loss and gradients (tests/test_lm_loss.py).
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

#: (model preset, batch size, timed repeats); small = the mini profile's model and batch size
SIZES = {"tiny": ("micro", 2, 3), "small": ("tiny-3m", 16, 15)}


def full_logits_step(method, optimizer, batch) -> float:
    """:func:`cvitkit.bench.train_step` with the labels handed to the model (logits at every position)."""
    inputs = method.prepare_batch(batch, training=True)
    inputs.pop("logits_to_keep", None)
    inputs["labels"] = batch["labels"]
    loss, _ = method.compute_loss(inputs, method.model(**inputs), batch)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())


def main(argv=None) -> int:
    import torch

    from cvitkit.bench import (bench_parser, interleaved, machine_info, median_ratio, method_in_training, print_table,
                               size_key, synthetic_records, train_step, write_csv)
    from cvitkit.data import TrainCollator, corpus
    from cvitkit.memory import measure_step
    from cvitkit.models import build_tiny_llava

    parser = bench_parser(__doc__)
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (default: by size)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    preset, batch_size, repeats = SIZES[size_key(args.size)]
    repeats = args.repeats or repeats
    # the kit's tokenizer corpus gives the mini base model's vocabulary (the share of the step the logits take)
    base, processor = build_tiny_llava(preset, seed=0, corpus=corpus())
    batch = TrainCollator(processor)(synthetic_records(batch_size, processor.image_processor.crop_size["height"]))
    n_answer = int((batch["labels"] != -100).sum())
    steps, activations = {}, {}
    for label, step, answer_only in (("full_logits", full_logits_step, False), ("answer_logits", train_step, True)):
        torch.manual_seed(0)
        method, optimizer = method_in_training("lora_ft", copy.deepcopy(base), processor, batch)
        steps[label] = lambda m=method, o=optimizer, f=step: f(m, o, batch)
        probe, _ = method_in_training("lora_ft", copy.deepcopy(base), processor, batch)
        inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "pixel_values", "labels")}
        activations[label] = measure_step(probe.model, inputs, answer_logits_only=answer_only)["activations"]
    print(f"LoRA-FT step, model {preset}, batch {batch_size} x {batch['input_ids'].shape[1]} tokens "
          f"({n_answer} supervised), vocabulary {len(processor.tokenizer)}, {repeats} interleaved rounds, "
          f"{torch.get_num_threads()} thread(s)")
    times = interleaved(steps, repeats, warmup=2)
    rows = [{"size": size_key(args.size), "row": label, "reference": "full_logits",
             "step_ms_median": round(1000 * sorted(times[label])[len(times[label]) // 2], 3),
             "ratio_vs_full": round(median_ratio(times[label], times["full_logits"]), 3),
             "activation_mib": round(activations[label] / 2 ** 20, 2),
             "activation_ratio": round(activations[label] / activations["full_logits"], 3),
             "tokens": int(batch["input_ids"].numel()), "supervised_tokens": n_answer,
             "vocab": len(processor.tokenizer), "repeats": repeats, "model": preset, "batch": batch_size}
            for label in steps]
    print_table(rows, ["row", "step_ms_median", "ratio_vs_full", "activation_mib", "activation_ratio"])
    write_csv(args.out, "loss", rows, machine_info())
    return 0


if __name__ == "__main__":
    sys.exit(main())
