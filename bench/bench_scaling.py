"""Benchmark: training-step time against the number of experts and the number of tasks seen.

    python bench/bench_scaling.py --size small     # results/bench/scaling.csv
    python bench/bench_scaling.py --size tiny --out /tmp/bench

Experts: a MoELoRA mixture (dense softmax router) with E = 1, 2, 4, 8, 16 experts, once at a fixed
total rank (r = 32 split over E: the routing cost alone grows) and once at a fixed rank per expert
(r_e = 4: the adapter grows too). Tasks: BranchLoRA after 0..T-1 finished tasks (one router per task)
and CRAM after 1..T finished tasks (one expert per task in the pool). Step times are medians of
interleaved rounds; the slope is a least-squares fit of ms against the count, and "linear" states
whether the cost per added unit does not grow (last increment per unit <= 1.5x the first one).
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

#: (model preset, batch, timed rounds, expert counts, task counts)
SIZES = {"tiny": ("micro", 2, 2, (1, 2, 4), (1, 2)), "small": ("tiny-3m", 8, 7, (1, 2, 4, 8, 16), (1, 2, 4, 6))}


def fit(xs: list[float], ys: list[float]) -> tuple[float, bool]:
    """Least-squares slope of ys on xs, and whether growth is at most linear (per-unit cost not rising)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / max(1e-12, sum((x - mx) ** 2 for x in xs))
    first = (ys[1] - ys[0]) / (xs[1] - xs[0])
    last = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
    return slope, last <= 1.5 * max(first, 0.0) + 0.05 * ys[0]


def main(argv=None) -> int:
    from cvitkit.bench import (bench_parser, interleaved, machine_info, method_in_training, print_table, size_key,
                               synthetic_records, train_step, trainable_parameters, write_csv)
    from cvitkit.data import TrainCollator
    from cvitkit.models import build_tiny_llava

    args = bench_parser(__doc__).parse_args(argv)
    import statistics

    import torch

    torch.set_num_threads(args.threads)
    preset, batch_size, repeats, experts, tasks = SIZES[size_key(args.size)]
    base, processor = build_tiny_llava(preset, seed=0)
    batch = TrainCollator(processor)(synthetic_records(batch_size, processor.image_processor.crop_size["height"]))
    series = {}
    for E in experts:
        series[("moelora_fixed_total_rank", E)] = ("moelora", {"n_experts": E, "rank": 32, "alpha": 64}, 0)
        series[("moelora_fixed_expert_rank", E)] = ("moelora", {"n_experts": E, "rank": 4 * E, "alpha": 8 * E}, 0)
    for T in tasks:
        series[("branchlora_tasks", T)] = ("branchlora", {}, T - 1)
        series[("cram_tasks", T)] = ("cram", {"max_slots": max(tasks) + 1}, T)
    steps, params = {}, {}
    for key, (name, overrides, before) in series.items():
        torch.manual_seed(0)
        method, opt = method_in_training(name, copy.deepcopy(base), processor, batch, overrides, tasks_before=before)
        steps[key] = lambda m=method, o=opt: train_step(m, o, batch)
        params[key] = trainable_parameters(method.model)
    print(f"step time scaling, model {preset}, batch {batch_size}, {repeats} interleaved rounds")
    times = interleaved(steps, repeats, warmup=1)
    rows = []
    for (kind, count), ts in times.items():
        rows.append({"size": size_key(args.size), "series": kind, "count": count,
                     "step_ms": round(1000 * statistics.median(ts), 3), "trainable_params": params[(kind, count)],
                     "repeats": repeats, "model": preset, "batch": batch_size})
    summary = []
    for kind in dict.fromkeys(r["series"] for r in rows):
        pts = [(r["count"], r["step_ms"]) for r in rows if r["series"] == kind]
        slope, linear = fit([p[0] for p in pts], [p[1] for p in pts])
        for r in rows:
            if r["series"] == kind:
                r.update(slope_ms_per_unit=round(slope, 3), at_most_linear=linear)
        summary.append({"series": kind, "unit": "task" if "tasks" in kind else "expert",
                        "slope_ms_per_unit": slope, "ms_at_min": pts[0][1], "ms_at_max": pts[-1][1],
                        "at_most_linear": linear})
    rows.sort(key=lambda r: (r["series"], r["count"]))
    print_table(rows, ["series", "count", "step_ms", "trainable_params"])
    print()
    print_table(summary)
    write_csv(args.out, "scaling", rows, machine_info())
    return 0


if __name__ == "__main__":
    sys.exit(main())
