"""Benchmark: wall time of each reproduce stage, read from what the pipeline recorded.

    python bench/bench_e2e.py                  # results/bench/e2e.csv
    python bench/bench_e2e.py --work /tmp/runs --profiles smoke

``cvitkit.pipeline`` writes a marker per finished job, ``runs/<profile>/stages/<stage>/<job>.json``,
with its ``seconds`` (``CVITKIT_WORK`` moves ``runs/``). This script sums them per stage for the smoke
and mini profiles, says which stages have no record yet, and adds the training wall time recorded by
each continual run (``runs/<profile>/runs/<suite>/<method>/stages/*/stage.json``). It runs nothing:
run ``./reproduce.sh --profile smoke`` (or mini) first. ``--size`` is accepted for the runner and ignored.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def stage_rows(work: Path, profile: str) -> list[dict]:
    """One row per pipeline stage of ``profile``: jobs recorded, seconds summed, last finish time."""
    from cvitkit.pipeline import STAGES

    rows = []
    for stage in STAGES:
        folder = work / profile / "stages" / stage.name
        markers = sorted(folder.glob("*.json")) if folder.is_dir() else []
        records = []
        for m in markers:
            try:
                records.append(json.loads(m.read_text()))
            except (OSError, json.JSONDecodeError) as exc:
                print(f"skipping unreadable marker {m}: {exc} (delete it; the pipeline rewrites it)", file=sys.stderr)
        rows.append({"profile": profile, "stage": stage.name, "jobs_recorded": len(records),
                     "seconds": round(sum(float(r.get("seconds", 0)) for r in records), 1) if records else "",
                     "finished": max((r.get("finished", "") for r in records), default=""),
                     "status": "recorded" if records else "no record"})
    return rows


def training_seconds(work: Path, profile: str) -> tuple[int, float]:
    """(continual runs with recorded stages, their summed wall seconds)."""
    runs, total = set(), 0.0
    for path in (work / profile / "runs").glob("*/*/stages/*/stage.json"):
        try:
            log = json.loads(path.read_text()).get("log", {})
        except (OSError, json.JSONDecodeError):
            continue
        runs.add(path.parents[2])
        total += float(log.get("wall_seconds", 0) or 0)
    return len(runs), total


def main(argv=None) -> int:
    from cvitkit.bench import bench_parser, machine_info, print_table, write_csv
    from cvitkit.provenance import work_dir

    parser = bench_parser(__doc__)
    parser.add_argument("--work", default=None, help="the runs/ root (default: CVITKIT_WORK or runs/)")
    parser.add_argument("--profiles", nargs="*", default=["smoke", "mini"], help="profiles to report")
    args = parser.parse_args(argv)
    work = Path(args.work) if args.work else work_dir("smoke").parent
    rows = []
    for profile in args.profiles:
        stages = stage_rows(work, profile)
        n_runs, train_s = training_seconds(work, profile)
        recorded = [r for r in stages if r["status"] == "recorded"]
        total = sum(r["seconds"] for r in recorded)
        print(f"\nprofile {profile}: {len(recorded)}/{len(stages)} stages recorded in {work / profile}/stages, "
              f"{total:.0f} s in all; {n_runs} continual run(s) recorded {train_s:.0f} s of training")
        if not recorded:
            print(f"  no stage record for {profile}: run ./reproduce.sh --profile {profile} first")
        print_table(stages, ["stage", "jobs_recorded", "seconds", "finished", "status"])
        rows += stages + [{"profile": profile, "stage": "TOTAL (recorded stages)", "jobs_recorded":
                           sum(r["jobs_recorded"] for r in stages), "seconds": round(total, 1), "finished": "",
                           "status": f"{len(recorded)}/{len(stages)} recorded", "training_runs": n_runs,
                           "training_wall_seconds": round(train_s, 1)}]
    write_csv(args.out, "e2e", rows, machine_info())
    return 0


if __name__ == "__main__":
    sys.exit(main())
