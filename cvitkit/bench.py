"""Run the performance benchmarks in ``bench/`` (``./reproduce.sh bench [--only NAME] [--size tiny]``).

Each ``bench/bench_*.py`` is a script that prints a table and writes ``results/bench/<name>.csv``.
Benchmarks compare ratios against a reference measured in the same process; they are never
wall-clock assertions in tests.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from cvitkit.profiles import REPO_ROOT

BENCH_DIR = REPO_ROOT / "bench"


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
