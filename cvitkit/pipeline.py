"""The reproduce pipeline: an ordered list of stages, each one or more papermill notebook runs.

``./reproduce.sh`` calls ``python -m cvitkit.pipeline run --profile P [--only STAGE] [--force]``.
A job whose marker file exists (``runs/<profile>/stages/<stage>/<job>.json``) with the same
parameters is skipped, so an interrupted pipeline resumes where it stopped; ``--force`` redoes it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cvitkit.config import config_hash
from cvitkit.errors import CvitkitError
from cvitkit.profiles import REPO_ROOT, Profile, available_profiles, load_profile
from cvitkit.provenance import atomic_write_json, work_dir


@dataclass(frozen=True)
class Job:
    """One notebook execution: an id unique within its stage, the papermill parameters, the notebook
    when it differs from the stage's, and ``inputs``: what the notebook reads without taking it as a
    parameter (the runs a suite's evaluation finds on disk). Inputs are part of the job's key, so adding a
    run to a plan re-runs the evaluation and tables that read it instead of leaving them stale."""

    job_id: str
    parameters: dict = field(default_factory=dict)
    notebook: str | None = None
    inputs: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return config_hash({"parameters": self.parameters, "inputs": self.inputs} if self.inputs else self.parameters)


def _base_parameters(profile: Profile) -> dict:
    params = {"profile": profile.name}
    if profile.model.source == "path":
        params["model_path"] = profile.model.path
    if profile.data_root:
        params["data_root"] = profile.data_root
    return params


def _single_job(profile: Profile) -> list[Job]:
    return [Job("all", {"profile": profile.name})]


def _with_data_root(profile: Profile, params: dict) -> dict:
    return {**params, "data_root": profile.data_root} if profile.data_root else params


def _data_jobs(profile: Profile) -> list[Job]:
    return [Job("all", _with_data_root(profile, {"profile": profile.name}))]


def _base_jobs(profile: Profile) -> list[Job]:
    return [Job("base", {"profile": profile.name, "runs": ["base"]})] if profile.model.source == "base" else []


def _suite_plan(profile: Profile) -> dict[str, list[str]]:
    from cvitkit.experiments import plan

    return {suite: runs for suite, runs in plan(profile.name).items() if suite in profile.suites}


def _train_jobs(profile: Profile) -> list[Job]:
    return [Job(suite, {**_base_parameters(profile), "suite": suite, "runs": runs})
            for suite, runs in _suite_plan(profile).items()]


def _evaluate_jobs(profile: Profile) -> list[Job]:
    # the data root too: the learnability table scores each task's majority answer on its records
    return [Job(suite, _with_data_root(profile, {"profile": profile.name, "suite": suite}), inputs={"runs": runs})
            for suite, runs in _suite_plan(profile).items()]


TABLE_NOTEBOOKS = {"strlora": "10_strlora_tables", "branchlora": "11_branchlora_tables",
                   "mllmcl": "12_mllmcl_tables", "cram": "13_cram_tables"}


#: Profiles whose tables stage also runs notebook 21 (about a minute on 2 cores). Its measurements are
#: CPU ones of the tiny model: on a GPU machine (full) the 4-bit load would go to the GPU and the rows
#: would no longer compare like with like.
MEMORY_NOTEBOOK_PROFILES = ("smoke", "mini")


def _table_jobs(profile: Profile) -> list[Job]:
    runs = {"plan": _suite_plan(profile)}
    jobs = [Job(paper, {"profile": profile.name}, notebook=nb, inputs=runs) for paper, nb in TABLE_NOTEBOOKS.items()]
    if profile.name in MEMORY_NOTEBOOK_PROFILES:
        jobs.append(Job("qlora_memory", {"profile": profile.name}, notebook="21_qlora_memory"))
    return jobs


def _train_runs_first(profile: Profile, jobs: int, log) -> None:
    """The train stage's heavy part: every planned run, in parallel processes (see cvitkit.run_pool)."""
    from cvitkit.run_pool import PlannedRun, train_in_parallel

    runs = [PlannedRun(suite, run_id) for suite, run_ids in _suite_plan(profile).items() for run_id in run_ids]
    if runs:
        train_in_parallel(profile, runs, jobs, log=log)


@dataclass(frozen=True)
class Stage:
    name: str
    notebook: str
    help: str
    issue: int
    jobs: Callable[[Profile], list[Job]] = _single_job
    #: Work done before the stage's notebooks when any of them has to run: ``(profile, jobs, log)``.
    prepare: Callable[[Profile, int, Callable], None] | None = None

    @property
    def built(self) -> bool:
        return (REPO_ROOT / "notebooks" / f"{self.notebook}.py").is_file()


STAGES: list[Stage] = [
    Stage("setup_check", "00_setup_check", "versions, devices, tiny/real model forward and 4-bit check", 2),
    Stage("data", "01_data_preparation", "synthetic analogues (or real files) of every suite", 3, _data_jobs),
    Stage("base_model", "02_train", "kit-pretrained tiny LLaVA (mini base model)", 4, _base_jobs),
    Stage("train", "02_train", "continual training of every (method, suite) the tables need", 4, _train_jobs,
          prepare=_train_runs_first),
    Stage("evaluate", "03_evaluate", "accuracy matrices, metrics, forgetting curves per suite", 4,
          _evaluate_jobs),
    Stage("tables", "10_strlora_tables",
          "every table and figure of the four papers (notebooks 10-13); QLoRA memory (21)", 6, _table_jobs),
]


def stage_by_name(name: str) -> Stage:
    for stage in STAGES:
        if stage.name == name:
            return stage
    raise CvitkitError(f"unknown stage '{name}'. Stages: {', '.join(s.name for s in STAGES)}.")


def _marker(profile: Profile, stage: Stage, job: Job) -> Path:
    return work_dir(profile.name) / "stages" / stage.name / f"{job.job_id}.json"


def run_stage(profile: Profile, stage: Stage, force: bool = False, jobs: int = 0, log=print) -> str:
    """Run every job of ``stage``; returns ``"done"``, ``"skipped"`` or ``"not built"``.

    ``jobs``: worker processes for a stage with a parallel ``prepare`` step (0 = automatic)."""
    from cvitkit.notebooks import execute_notebook

    if not stage.built:
        log(f"[{stage.name}] not built yet (notebooks/{stage.notebook}.py arrives with issue #{stage.issue}); skipped")
        return "not built"
    t0 = time.time()
    ran = 0
    stage_jobs = stage.jobs(profile)

    def finished(job: Job) -> bool:
        marker = _marker(profile, stage, job)
        return (not force and marker.is_file()
                and json.loads(marker.read_text()).get("parameters_hash") == job.key)

    pending = {job.job_id for job in stage_jobs if not finished(job)}
    if stage.prepare and pending:
        stage.prepare(profile, jobs, log)
    for i, job in enumerate(stage_jobs, 1):
        if job.job_id not in pending:
            continue
        marker = _marker(profile, stage, job)
        key = job.key
        t1 = time.time()
        log(f"[{stage.name}] {i}/{len(stage_jobs)} {job.job_id} ...")
        notebook = job.notebook or stage.notebook
        executed = profile.results_dir / "executed" / f"{notebook}__{job.job_id}.ipynb"
        execute_notebook(notebook, executed, job.parameters)
        atomic_write_json(marker, {"stage": stage.name, "job": job.job_id, "parameters": job.parameters,
                                   "inputs": job.inputs, "parameters_hash": key, "seconds": round(time.time() - t1, 1),
                                   "finished": time.strftime("%Y-%m-%dT%H:%M:%S")})
        ran += 1
    status = "done" if ran else "skipped"
    note = f"{ran} job(s) run" if ran else f"all {len(stage_jobs)} job(s) already finished (--force redoes them)"
    log(f"[{stage.name}] {status} in {time.time() - t0:.0f} s: {note}")
    return status


def run(profile_name: str, only: str | None = None, force: bool = False, data_root: str | None = None,
        model: str | None = None, suites: list[str] | None = None, jobs: int = 0, log=print) -> dict[str, str]:
    profile = load_profile(profile_name, data_root=data_root, model_path=model, suites=suites or None)
    stages = [stage_by_name(only)] if only else STAGES
    log(f"cvitkit pipeline: profile {profile.name} ({profile.description})")
    t0 = time.time()
    statuses = {s.name: run_stage(profile, s, force=force, jobs=jobs, log=log) for s in stages}
    log(f"pipeline finished in {time.time() - t0:.0f} s; results in {profile.results_dir}/")
    missing = [n for n, st in statuses.items() if st == "not built"]
    if missing:
        log(f"stages not built yet: {', '.join(missing)}")
    return statuses


def _print_stages(profile_name: str | None) -> None:
    print("stage         built  notebook                 what it does")
    for s in STAGES:
        print(f"{s.name:<13} {'yes' if s.built else 'no ':<6} {s.notebook:<24} {s.help}"
              + ("" if s.built else f" (issue #{s.issue})"))
    print(f"profiles: {', '.join(available_profiles())}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cvitkit.pipeline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="run the pipeline")
    p_run.add_argument("--profile", default="mini", choices=available_profiles())
    p_run.add_argument("--only", choices=[s.name for s in STAGES])
    p_run.add_argument("--force", action="store_true")
    p_run.add_argument("--data-root")
    p_run.add_argument("--model")
    p_run.add_argument("--suite", action="append", dest="suites")
    p_run.add_argument("--jobs", type=int, default=0,
                       help="worker processes that train runs side by side (0: one per core on a CPU, 1 on a GPU)")
    p_st = sub.add_parser("stages", help="list the stages")
    p_st.add_argument("--profile")
    args = parser.parse_args(argv)
    if args.command == "stages":
        _print_stages(args.profile)
        return 0
    try:
        run(args.profile, only=args.only, force=args.force, data_root=args.data_root, model=args.model,
            suites=args.suites, jobs=args.jobs)
    except CvitkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
