"""Run the performance benchmarks in ``bench/`` (``./reproduce.sh bench [--only NAME] [--size tiny]``).

Each ``bench/bench_*.py`` is a script that prints a table and writes ``results/bench/<name>.csv``.
Benchmarks compare ratios against a reference measured in the same process; they are never
wall-clock assertions in tests. The helpers below are what the scripts share: machine details,
interleaved timing, synthetic batches, CSV output.
"""

from __future__ import annotations

import argparse
import csv
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from cvitkit.profiles import REPO_ROOT

BENCH_DIR = REPO_ROOT / "bench"
RESULTS_DIR = REPO_ROOT / "results" / "bench"
#: ``mini`` is accepted as ``small`` so that one ``--size`` can be passed to every script by the runner.
SIZE_CHOICES = ("tiny", "small", "mini")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: str = "cpu") -> dict:
    """CPU model, usable cores, torch threads and version, and the device the benchmark ran on."""
    import torch

    from cvitkit.run_pool import usable_cores

    cores = usable_cores()
    name = torch.cuda.get_device_name(0) if device.startswith("cuda") and torch.cuda.is_available() else "cpu"
    return {"cpu": _cpu_name(), "cores": cores, "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "device": device, "device_name": name}


def bench_parser(doc: str) -> argparse.ArgumentParser:
    """The options every benchmark script shares: ``--size``, ``--out``, ``--threads``."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=SIZE_CHOICES, default="small",
                        help="tiny: seconds, for tests; small (= mini): the figures reported in results/bench/")
    parser.add_argument("--out", default=str(RESULTS_DIR), help="folder for the CSV (default: results/bench)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (1: tiny tensors gain nothing from more on a shared CPU)")
    return parser


def size_key(size: str) -> str:
    return "small" if size == "mini" else size


def interleaved(steps: dict[str, Callable[[], object]], repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Seconds per call of every step, run round-robin (A B C A B C …) so that drift in the machine's
    load (other jobs, frequency scaling) hits every step alike instead of biasing whichever ran last."""
    for _ in range(warmup):
        for fn in steps.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, fn in steps.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def median_ratio(times: list[float], reference: list[float]) -> float:
    """Median over repeats of the per-repeat ratio (each pair was measured back to back)."""
    return statistics.median(t / r for t, r in zip(times, reference))


def synthetic_records(n: int, image_size: int, train: bool = True, seed: int = 0) -> list[dict]:
    """``n`` LLaVA records with drawn images (a coloured square) and questions of varied length."""
    import random

    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    colours = ["red", "blue", "green", "yellow"]
    questions = ["What colour is the square?", "Name the colour of the box in this picture.",
                 "Which colour does the shape in the centre of the image have? Answer with one word.", "Colour?"]
    out = []
    for i in range(n):
        colour, question = colours[i % 4], questions[rng.randrange(4)]
        image = Image.new("RGB", (image_size, image_size), "white")
        lo, hi = image_size // 4, 3 * image_size // 4
        ImageDraw.Draw(image).rectangle([lo, lo, hi, hi], fill=colour)
        if train:
            rec = {"id": str(i), "conversations": [{"from": "human", "value": "<image>\n" + question},
                                                   {"from": "gpt", "value": colour}]}
        else:
            rec = {"question_id": str(i), "text": question, "answer": colour}
        out.append({**rec, "image": "x.png", "pil_image": image, "task": f"T{i % 2}"})
    return out


def train_step(method, optimizer, batch: dict) -> float:
    """One training step exactly as the trainer runs it: routing inputs, forward, the method's loss,
    backward, its pre-step hook, AdamW, its post-step hook. Returns the loss."""
    inputs = method.prepare_batch(batch, training=True)
    loss, _ = method.compute_loss(inputs, method.model(**inputs), batch)
    loss.backward()
    method.before_optimizer_step()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    method.after_step()
    return float(loss.detach())


def method_in_training(name: str, model, processor, batch: dict, overrides: dict | None = None,
                       tasks_before: int = 0, lead_steps: int = 2, n_experiences: int = 25, finish: bool = False):
    """``(method, optimizer)`` with method ``name`` (mini preset + ``overrides``) set up on ``model`` and
    brought to the state a benchmark should time: ``tasks_before`` finished experiences (2 steps each),
    then ``lead_steps`` steps into the next one — past CRAM's warm-up into its mixture phase, past the
    first step of every lazily initialised key or EMA. StrLoRA's chunk 2 onward has its KL regulariser on.
    ``finish`` also ends that experience (commits CRAM's expert), for benchmarks of inference.
    """
    import torch

    from cvitkit.data.streams import Experience
    from cvitkit.methods.base import build_method

    method = build_method(name, "mini", overrides)
    method.setup(model, processor)
    method.n_experiences = n_experiences
    method.model.train()
    for index in range(tasks_before + 1):
        exp = Experience(index=index, task_name=f"T{index}", task_id=index, records=[], is_first=index == 0,
                         is_last=False)
        method.before_experience(exp)
        optimizer = torch.optim.AdamW(method.param_groups())
        # 10 planned steps put CRAM's one warm-up step first; BranchLoRA's usage window opens at step 5.
        method.before_training(exp, 10 if index < tasks_before else 0)
        for _ in range(2 if index < tasks_before else lead_steps):
            train_step(method, optimizer, batch)
        if index < tasks_before or finish:
            method.after_experience(exp, exp.records)
    return method, optimizer


def trainable_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def print_table(rows: list[dict], columns: list[str] | None = None) -> None:
    """Fixed-width table of ``rows`` on stdout (floats to 4 significant digits)."""
    columns = columns or list(rows[0])

    def fmt(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    widths = {c: max(len(c), *(len(fmt(r.get(c, ""))) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for r in rows:
        print("  ".join(fmt(r.get(c, "")).ljust(widths[c]) for c in columns), flush=True)


def write_csv(out_dir: str | Path, name: str, rows: list[dict], machine: dict) -> Path:
    """Write ``<out_dir>/<name>.csv``: the rows, each followed by the machine's details (one schema)."""
    path = Path(out_dir) / f"{name}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[*fields, *machine])
        writer.writeheader()
        for r in rows:
            writer.writerow({**r, **machine})
    print("machine: " + ", ".join(f"{k}={v}" for k, v in machine.items()))
    print(f"wrote {path}")
    return path


def available() -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in BENCH_DIR.glob("bench_*.py"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./reproduce.sh bench", description=__doc__)
    parser.add_argument("--only", action="append", help=f"run only these benchmarks ({', '.join(available()) or 'none yet'})")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="arguments passed to every benchmark script")
    args = parser.parse_args(argv)
    names = args.only or available()
    if not names:
        print("no benchmarks yet: bench/ holds no bench_*.py script (they arrive with issue #7).")
        return 0
    unknown = sorted(set(names) - set(available()))
    if unknown:
        print(f"unknown benchmark(s) {unknown}; available: {available()}", file=sys.stderr)
        return 2
    rc = 0
    for name in names:
        print(f"== bench {name}", flush=True)
        rc |= subprocess.call([sys.executable, str(BENCH_DIR / f"bench_{name}.py"), *args.rest], cwd=REPO_ROOT)
    return rc


if __name__ == "__main__":
    sys.exit(main())
