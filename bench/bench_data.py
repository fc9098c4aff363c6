"""Benchmark: time to generate every synthetic suite at a profile's size.

    python bench/bench_data.py --size mini            # target: <= 5 minutes on 2 cores
    python bench/bench_data.py --size tiny --workers 1

Builds every suite in ``configs/suites/`` into a temporary folder (deleted afterwards unless
``--keep DIR``), prints one row per suite (seconds, images, MiB) and writes
``results/bench/data_generation.csv`` with the machine's details.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SIZES = {"tiny": "smoke", "mini": "mini", "small": "mini"}
TARGET_S = {"tiny": 60, "mini": 300}


def folder_stats(path: Path) -> tuple[int, int]:
    images = size = 0
    for root, _, files in os.walk(path):
        for f in files:
            size += os.path.getsize(os.path.join(root, f))
            images += f.endswith(".png")
    return images, size


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="mini", help="tiny = smoke profile sizes; mini (or small, the other benchmarks' name) = mini")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: the profile's data.workers)")
    parser.add_argument("--suites", nargs="*", default=None, help="suites to build (default: all shipped suites)")
    parser.add_argument("--keep", default=None, help="build into this folder and keep it")
    parser.add_argument("--out", default=str(REPO / "results" / "bench" / "data_generation.csv"))
    args = parser.parse_args(argv)

    import PIL

    from cvitkit.data import available_suites, build_suite
    from cvitkit.profiles import load_profile

    cfg = load_profile(SIZES[args.size]).data
    if args.workers:
        cfg.workers = args.workers
    suites = args.suites or available_suites()
    tmp = None if args.keep else tempfile.TemporaryDirectory(prefix="cvitkit-bench-data-")
    root = Path(args.keep or tmp.name)
    machine = {"platform": platform.platform(), "python": platform.python_version(), "cpu_count": os.cpu_count(),
               "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
               "pillow": PIL.__version__, "workers": cfg.workers, "image_size": cfg.image_size}
    rows = []
    print(f"data generation, size {args.size} ({SIZES[args.size]} profile), workers {cfg.workers}, root {root}")
    print(f"{'suite':<12} {'tasks':>5} {'seconds':>8} {'images':>8} {'MiB':>8}")
    t_all = time.perf_counter()
    for name in suites:
        t0 = time.perf_counter()
        folder = build_suite(name, cfg, root, force=True, progress=False)
        seconds = time.perf_counter() - t0
        images, size = folder_stats(folder)
        from cvitkit.data import load_suite

        n_tasks = len(load_suite(name).tasks)
        rows.append({"suite": name, "tasks": n_tasks, "seconds": round(seconds, 2), "images": images,
                     "mib": round(size / 2**20, 1)})
        print(f"{name:<12} {n_tasks:>5} {seconds:>8.1f} {images:>8} {size / 2**20:>8.1f}", flush=True)
    total = time.perf_counter() - t_all
    tot = {"suite": "TOTAL", "tasks": sum(r["tasks"] for r in rows), "seconds": round(total, 2),
           "images": sum(r["images"] for r in rows), "mib": round(sum(r["mib"] for r in rows), 1)}
    rows.append(tot)
    ok = total <= TARGET_S[args.size]
    print(f"{'TOTAL':<12} {tot['tasks']:>5} {total:>8.1f} {tot['images']:>8} {tot['mib']:>8.1f}   "
          f"target <= {TARGET_S[args.size]} s: {'met' if ok else 'MISSED'}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["size", *rows[0], "target_s", *machine])
        writer.writeheader()
        for r in rows:
            writer.writerow({"size": args.size, **r, "target_s": TARGET_S[args.size], **machine})
    print(f"wrote {out}")
    if tmp:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
