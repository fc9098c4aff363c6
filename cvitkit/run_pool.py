"""Train a profile's planned runs in parallel worker processes before the train notebooks show them.

A tiny model on a CPU does not keep two intra-op threads busy: two runs side by side, one thread each,
finish about 1.2x sooner than the same runs one after the other on two threads (training steps;
generation gains more). So on a CPU the pipeline's train stage first hands every planned (suite, run)
to a pool of ``jobs`` processes with ``cores // jobs`` torch threads each, longest run first; the
per-suite train notebooks then find each run finished (runs resume from their last finished stage)
and only display it. Each worker's output goes to ``runs/<profile>/logs/<suite>__<run>.log``.

On a GPU one process owns the device, so the pool is skipped (``jobs`` resolves to 1).
"""

from __future__ import annotations

import json
import os
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from multiprocessing import get_context

from cvitkit.errors import CvitkitError
from cvitkit.profiles import Profile
from cvitkit.provenance import work_dir

#: Upper bound of the automatic worker count: beyond it memory, not CPU, becomes the limit.
MAX_AUTO_JOBS = 4


@dataclass(frozen=True)
class PlannedRun:
    suite: str
    run_id: str

    @property
    def label(self) -> str:
        return f"{self.suite}__{self.run_id}"


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def resolve_jobs(jobs: int, n_runs: int) -> int:
    """``jobs`` > 0 is taken as given; 0 means one process per core (at most ``MAX_AUTO_JOBS``) on a CPU
    and a single process when CUDA is available."""
    if jobs < 0:
        raise CvitkitError(f"--jobs must be 0 (automatic) or a positive count, got {jobs}.")
    if jobs == 0:
        import torch

        jobs = 1 if torch.cuda.is_available() else min(usable_cores(), MAX_AUTO_JOBS)
    return max(1, min(jobs, n_runs))


def previous_seconds(profile: Profile, run: PlannedRun) -> float:
    """Time of this run in the profile's committed results (its stages' training and evaluation time,
    0 when unknown): the pool starts the longest runs first so that the last one to finish is a short one."""
    for path in (profile.results_dir / "runs").glob(f"{run.suite}*/{run.run_id}/summary.json"):
        try:
            summary = json.loads(path.read_text())
            return float(summary.get("stage_seconds") or summary.get("wall_seconds") or 0.0)
        except (OSError, ValueError):
            return 0.0
    return 0.0


def _train_one(profile: Profile, run: PlannedRun, threads: int, log_path: str) -> float:
    import torch

    torch.set_num_threads(threads)
    from cvitkit.runner import run_named

    t0 = time.time()
    with open(log_path, "a") as fh, redirect_stdout(fh), redirect_stderr(fh):
        try:
            run_named(profile, run.suite, run.run_id, log=lambda *a: print(*a, flush=True))
        except BaseException:
            traceback.print_exc(file=fh)
            raise
    return time.time() - t0


def train_in_parallel(profile: Profile, runs: list[PlannedRun], jobs: int, log=print) -> dict[str, float]:
    """Train ``runs`` with ``jobs`` worker processes; returns seconds per run label.

    A failed run does not stop the others; once all have ended the first failure is raised with the
    path of its log, and re-running the stage resumes every unfinished run.
    """
    jobs = resolve_jobs(jobs, len(runs))
    threads = max(1, usable_cores() // jobs)
    log_dir = work_dir(profile.name) / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    ordered = sorted(runs, key=lambda r: -previous_seconds(profile, r))
    log(f"[train] {len(runs)} run(s) in {jobs} process(es) x {threads} thread(s); logs in {log_dir}/")
    seconds, failures = {}, []
    t0 = time.time()
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(_train_one, profile, run, threads, str(log_dir / f"{run.label}.log")): run
                   for run in ordered}
        for done, future in enumerate(as_completed(futures), 1):
            run = futures[future]
            try:
                seconds[run.label] = future.result()
                log(f"[train]   {done}/{len(runs)} {run.suite}/{run.run_id} finished in {seconds[run.label]:.0f} s "
                    f"({time.time() - t0:.0f} s elapsed)")
            except Exception as exc:  # noqa: BLE001 - reported with its log below
                failures.append((run, exc))
                log(f"[train]   {done}/{len(runs)} {run.suite}/{run.run_id} FAILED: {exc}")
    if failures:
        run, exc = failures[0]
        raise CvitkitError(f"run {run.suite}/{run.run_id} failed ({exc}); its log: "
                           f"{log_dir / (run.label + '.log')}. Fix the cause and run the stage again: "
                           "finished runs and stages are kept.") from exc
    return seconds
