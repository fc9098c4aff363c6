"""Benchmark: training-step time of each method's adapter relative to plain peft LoRA of the same rank.

    python bench/bench_adapters.py --size small      # the figures in results/bench/adapters.csv
    python bench/bench_adapters.py --size tiny --out /tmp/bench

One step = the method's routing inputs, forward, its loss, backward and an AdamW step, on the same
tiny LLaVA and batch for every row. Each row is set up the way its method trains (mini preset), in
the phase that costs most: BranchLoRA with usage tracking on, StrLoRA in chunk 2 (KL regulariser and
EMA on), CRAM in task 2's mixture phase (a committed expert, the new one, the orthogonality penalty),
MR-LoRA's expert next to its (inactive) router adapter, SMoLoRA with its instruction embeddings computed in
the step. ``moelora_loop`` is MoELoRA with the experts
computed one by one (``mixture_delta_loop``), the reference the batched layer replaces.

The reference of each row is a peft LoRA with the row's total rank on the row's target layers (CRAM:
its buffer rank on attention). All models are timed round-robin, and a row's ratio is the median over
repeats of (row step / reference step) from the same round.
"""

from __future__ import annotations

import copy
import sys
import types
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

#: (model preset, batch size, timed repeats)
SIZES = {"tiny": ("micro", 2, 3), "small": ("tiny-3m", 8, 15)}
#: row → (method, overrides, (reference rank, reference targets), target ratio)
ROWS = {
    "moelora": ("moelora", {}, (32, "all_linear"), 1.3),
    "moelora_loop": ("moelora", {}, (32, "all_linear"), None),
    "branchlora": ("branchlora", {}, (32, "all_linear"), 1.3),
    "strlora": ("strlora", {}, (32, "all_linear"), 1.5),
    "cram": ("cram", {}, (16, "attention"), 1.5),
    "mr_lora_expert": ("mr_lora", {"routing": "mllm"}, (8, "all_linear"), None),
    "smolora": ("smolora", {}, (32, "all_linear"), None),
}
#: rows that need finished tasks before the timed one (CRAM: one committed expert; StrLoRA: chunk 2).
TASKS_BEFORE = {"cram": 1, "strlora": 1}


def loop_delta(self, x, adapter_name):
    """``MixtureLoraLinear.adapter_delta`` with a Python loop over experts (the pre-batching layer)."""
    from cvitkit.adapters import mixture_delta_loop

    spec = self.lora_spec[adapter_name]
    As, Bs = list(self.lora_A[adapter_name]), list(self.lora_B[adapter_name])
    x = x.to(As[0].dtype)
    gates = self.lora_router[adapter_name](x, self.routing_context, self.layer_name)
    if gates is not None and gates.dim() == 1:
        gates = gates.expand(*x.shape[:-1], -1)
    delta = mixture_delta_loop(self.lora_dropout[adapter_name](x), As, Bs, gates, spec.shared_a)
    return delta * self.scaling[adapter_name]


def build_rows(preset: str, batch_size: int, only: list[str] | None = None):
    """Every timed model: ``{label: (step function, trainable parameters)}`` plus row metadata."""
    import torch

    from cvitkit.adapters import mixture_layers
    from cvitkit.bench import method_in_training, synthetic_records, trainable_parameters, train_step
    from cvitkit.data import TrainCollator
    from cvitkit.models import build_tiny_llava

    base, processor = build_tiny_llava(preset, seed=0)
    image_size = processor.image_processor.crop_size["height"]
    batch = TrainCollator(processor)(synthetic_records(batch_size, image_size))
    built = {}

    def add(label, name, overrides, tasks_before=0, patch=None):
        torch.manual_seed(0)
        method, optimizer = method_in_training(name, copy.deepcopy(base), processor, batch, overrides,
                                               tasks_before=tasks_before)
        if patch:
            for layer in mixture_layers(method.model):
                layer.adapter_delta = types.MethodType(patch, layer)
            train_step(method, optimizer, batch)
        built[label] = (lambda m=method, o=optimizer: train_step(m, o, batch), trainable_parameters(method.model))

    rows = {k: v for k, v in ROWS.items() if not only or k in only}
    for rank, targets in sorted({ref for *_, ref, _ in rows.values()}):
        add(f"lora_r{rank}_{targets}", "lora_ft", {"rank": rank, "alpha": 2 * rank, "targets": targets})
    for label, (name, overrides, _, _) in rows.items():
        add(label, name, overrides, TASKS_BEFORE.get(label, 0), loop_delta if label.endswith("_loop") else None)
    return built, batch


def main(argv=None) -> int:
    from cvitkit.bench import bench_parser, interleaved, machine_info, median_ratio, print_table, size_key, write_csv

    parser = bench_parser(__doc__)
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (default: by size)")
    parser.add_argument("--rows", nargs="*", choices=sorted(ROWS), help="time only these rows (and their references)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    preset, batch_size, repeats = SIZES[size_key(args.size)]
    repeats = args.repeats or repeats
    built, batch = build_rows(preset, batch_size, args.rows)
    print(f"adapter step time, model {preset}, batch {batch_size} x {batch['input_ids'].shape[1]} tokens, "
          f"{repeats} interleaved rounds, {torch.get_num_threads()} thread(s)")
    times = interleaved({k: fn for k, (fn, _) in built.items()}, repeats, warmup=2)
    rows = []
    for label, (_, n_trainable) in built.items():
        ref_rank, ref_targets = ROWS[label][2] if label in ROWS else (None, None)
        ref = f"lora_r{ref_rank}_{ref_targets}" if label in ROWS else label
        target = ROWS[label][3] if label in ROWS else None
        ratio = median_ratio(times[label], times[ref])
        rows.append({"size": size_key(args.size), "row": label, "reference": ref,
                     "step_ms_median": round(1000 * sorted(times[label])[len(times[label]) // 2], 3),
                     "ratio_vs_lora": round(ratio, 3), "target": target or "",
                     "met": ("yes" if ratio <= target else "NO") if target else "",
                     "trainable_params": n_trainable, "repeats": repeats, "model": preset, "batch": batch_size})
    if "moelora_loop" in built and "moelora" in built:
        gain = median_ratio(times["moelora_loop"], times["moelora"])
        print(f"batched experts vs loop over experts (MoELoRA, 8 experts): loop takes {gain:.2f}x the batched time")
    print_table(rows, ["row", "reference", "step_ms_median", "ratio_vs_lora", "target", "met", "trainable_params"])
    write_csv(args.out, "adapters", rows, machine_info())
    return 0


if __name__ == "__main__":
    sys.exit(main())
