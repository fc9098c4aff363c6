"""Benchmark: greedy-generation throughput of each method's routing against one merged LoRA.

    python bench/bench_inference.py --size small     # results/bench/inference.csv
    python bench/bench_inference.py --size tiny --out /tmp/bench

Every row generates the same number of new tokens (``min_new_tokens = max_new_tokens``) for the same
evaluation batch through its method's ``prepare_batch`` + ``generate`` (routing features, task
selector, pools, all included). The reference is a rank-32 LoRA merged into the base weights
(``merge_and_unload``: the base model's own speed). MR-LoRA is two-stage: stage 1 generates a router
answer with the router adapter (up to ``router_max_new_tokens``; the router here is untrained, so it
usually runs to that limit — an upper bound on stage 1), stage 2 generates with the chosen expert;
both times are reported.
"""

from __future__ import annotations

import copy
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

#: (model preset, eval batch, new tokens, timed rounds)
SIZES = {"tiny": ("micro", 2, 4, 2), "small": ("tiny-3m", 8, 16, 5)}
#: row -> (method, overrides, finished tasks before, merge)
ROWS = {"lora_merged": ("lora_ft", {}, 0, True), "lora_unmerged": ("lora_ft", {}, 0, False),
        "moelora": ("moelora", {}, 0, False), "branchlora": ("branchlora", {}, 1, False),
        "strlora": ("strlora", {}, 1, False), "cram": ("cram", {}, 1, False),
        "mr_lora_two_stage": ("mr_lora", {"routing": "mllm"}, 1, False), "smolora": ("smolora", {}, 0, False)}


def main(argv=None) -> int:
    from cvitkit.bench import (bench_parser, interleaved, machine_info, method_in_training, print_table, size_key,
                               synthetic_records, write_csv)
    from cvitkit.data import EvalCollator, TrainCollator
    from cvitkit.models import build_tiny_llava

    args = bench_parser(__doc__).parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    preset, batch_size, new_tokens, repeats = SIZES[size_key(args.size)]
    base, processor = build_tiny_llava(preset, seed=0)
    image_size = processor.image_processor.crop_size["height"]
    train_batch = TrainCollator(processor)(synthetic_records(batch_size, image_size))
    eval_batch = EvalCollator(processor)(synthetic_records(batch_size, image_size, train=False))
    kwargs = {"max_new_tokens": new_tokens, "min_new_tokens": new_tokens, "do_sample": False, "num_beams": 1,
              "pad_token_id": processor.tokenizer.pad_token_id}
    methods, calls = {}, {}
    for label, (name, overrides, before, merge) in ROWS.items():
        torch.manual_seed(0)
        method, _ = method_in_training(name, copy.deepcopy(base), processor, train_batch, overrides,
                                       tasks_before=before, finish=name != "mr_lora")
        method.model.eval()
        if merge:
            method.model = method.model.merge_and_unload()

        def call(m=method):
            with torch.no_grad():
                return m.generate(m.prepare_batch(eval_batch, training=False), eval_batch, **kwargs)

        methods[label], calls[label] = method, call
    print(f"greedy generation, model {preset}, batch {batch_size}, {new_tokens} new tokens, {repeats} rounds")
    for m in methods.values():
        if hasattr(m, "_reset_eval_stats"):
            m._reset_eval_stats()
    times = interleaved(calls, repeats, warmup=1)
    ref = statistics.median(times["lora_merged"])
    rows = []
    for label, ts in times.items():
        t = statistics.median(ts)
        row = {"size": size_key(args.size), "row": label, "seconds_per_batch": round(t, 4),
               "tokens_per_s": round(batch_size * new_tokens / t, 2), "slowdown_vs_merged": round(t / ref, 3),
               "model": preset, "batch": batch_size, "new_tokens": new_tokens, "repeats": repeats}
        if label == "mr_lora_two_stage":
            ev = methods[label]._eval  # accumulated over warm-up + timed rounds
            calls_made = repeats + 1
            row.update(router_seconds_per_batch=round(ev["router_seconds"] / calls_made, 4),
                       expert_seconds_per_batch=round(ev["answer_seconds"] / calls_made, 4),
                       router_new_tokens_per_sample=round(ev["router_new_tokens"] / (calls_made * batch_size), 2))
        rows.append(row)
    print_table(rows, ["row", "seconds_per_batch", "tokens_per_s", "slowdown_vs_merged", "router_seconds_per_batch",
                       "expert_seconds_per_batch", "router_new_tokens_per_sample"])
    mr = next(r for r in rows if r["row"] == "mr_lora_two_stage")
    print(f"MR-LoRA two-stage: router stage {mr['router_seconds_per_batch']} s + expert stage "
          f"{mr['expert_seconds_per_batch']} s per batch ({mr['router_new_tokens_per_sample']} router tokens/sample)")
    write_csv(args.out, "inference", rows, machine_info())
    return 0


if __name__ == "__main__":
    sys.exit(main())
