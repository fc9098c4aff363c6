"""Run one (method, suite) for a profile end to end and summarise it — what notebook 02 calls.

A run folder ``<work>/<profile>/runs/<suite>[_<N>chunks]/<method>[__<variant>]`` holds ``config.json``
(everything that determines the result), the stage folders written by the trainer, and the
summary files rebuilt from them: ``matrix.csv`` (accuracy matrix, rows = stages, columns = tasks),
``metrics.json``, ``summary.json`` (parameters, timings, routing statistics). A run whose
``config.json`` differs from the requested config is started afresh; an identical one resumes.
The small summary files are also copied to ``results/<profile>/runs/...`` (committed for ``mini``).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cvitkit.config import config_hash, key_fields
from cvitkit.profiles import Profile, load_profile
from cvitkit.provenance import atomic_write_json, provenance, work_dir

SUMMARY_FILES = ("config.json", "base_model.json", "matrix.csv", "metrics.json", "summary.json")
#: Experience index whose seed initialises the adapters (-1 is the initial evaluation's).
SETUP_SEED_INDEX = -2


@dataclass
class RunResult:
    run_dir: Path
    matrix: pd.DataFrame
    metrics: dict
    summary: dict


def run_name(suite: str, method: str, variant: str = "", stream_length: int | None = None) -> str:
    suite_part = f"{suite}_{stream_length}chunks" if stream_length else suite
    return f"{suite_part}/{method}" + (f"__{variant}" if variant else "")


def method_preset(profile: Profile) -> str:
    """Real models use the papers' settings, tiny ones the scaled-down ``mini`` preset (``smoke`` for the
    smoke profile: ``mini`` with the few settings that would dominate a seconds-long run shortened)."""
    if profile.model.source == "path":
        return "paper"
    return "smoke" if profile.name == "smoke" else "mini"


def load_base(profile: Profile, corpus=(), run_dir: Path | None = None, log=print):
    """The profile's base model and processor, frozen and ready for adapters.

    With ``run_dir``, a kit-pretrained base model's identity is recorded in ``run_dir/base_model.json``
    (see :func:`record_base_model`)."""
    from cvitkit.models import enable_training_mode
    from cvitkit.models.spec import load_from_config

    base_dir = base_model_dir(profile)
    if base_dir is not None and run_dir is not None:
        record_base_model(run_dir, base_dir, log)
    model, processor = load_from_config(profile.model, base_dir=base_dir, corpus=corpus)
    enable_training_mode(model, gradient_checkpointing=profile.model.gradient_checkpointing)
    return model, processor


def base_model_dir(profile: Profile) -> Path | None:
    """The folder of the profile's kit-pretrained base model (pretrained first if not cached), or None
    for a model read from a path or built fresh."""
    if profile.model.source != "base":
        return None
    from cvitkit.base_model import ensure_base_model

    return ensure_base_model(profile)


def record_base_model(run_dir: Path, base_dir: Path, log=print) -> list[dict]:
    """Add the base model's :func:`~cvitkit.base_model.base_identity` to ``run_dir/base_model.json``
    unless it is already the last one there; return the pretrainings listed.

    The run's config names the base model's key, which a re-pretraining (another machine, another thread
    count) keeps. Each entry says from which stage on the run read it (``from_stage``: stages finished
    when it was first read), so a run resumed on another pretraining lists both, and a run older than
    this record says which of its stages it cannot vouch for."""
    from cvitkit.base_model import base_identity

    path = run_dir / "base_model.json"
    seen = json.loads(path.read_text())["pretrainings"] if path.is_file() else []
    identity = base_identity(base_dir)
    if seen and seen[-1]["weights_sha256"] == identity["weights_sha256"]:
        return seen
    finished = len(list((run_dir / "stages").glob("*/stage.json")))
    if seen:
        log(f"{run_dir}: base model {identity['key']} was pretrained again since this run last read it (weights "
            f"{seen[-1]['weights_sha256']} then, {identity['weights_sha256']} now); stages from {finished} on "
            "stand on the new one (both listed in base_model.json)")
    seen.append({**identity, "from_stage": finished})
    atomic_write_json(path, {"pretrainings": seen})
    return seen


def experiences_for(suite_data, stream_length: int | None, joint: bool):
    from cvitkit.data import chunk_stream, task_stream

    if suite_data.suite.protocol == "stream":
        return chunk_stream(suite_data, stream_length or suite_data.suite.stream.lengths[-1])
    exps = task_stream(suite_data)
    return [merge_experiences(exps)] if joint else exps


def merge_experiences(experiences):
    """One experience holding every task's records (joint / multitask training)."""
    from dataclasses import replace

    records = [r for e in experiences for r in e.records]
    return replace(experiences[0], index=0, task_name=None, task_id=None, records=records, is_first=True,
                   is_last=True)


def run_config(profile: Profile, suite_spec, method_obj, **fields) -> dict:
    """Everything that determines a run's result (hashed by ``_start_or_resume``), plus ``fields``."""
    from cvitkit.data import corpus

    data = key_fields(profile.data, added_later=("instructions",))  # runs started before the switch still resume
    config = {"profile": profile.name, "suite": suite_spec.name, "method": method_obj.name, **fields,
              "method_config": method_obj.config.to_dict(), "train": asdict(profile.train),
              "model": asdict(profile.model), "data": data,
              # An edited suite YAML (tasks, order, scorer) must not resume runs of the old definition.
              "suite_definition": config_hash(asdict(suite_spec))}
    if profile.model.source == "base":  # a re-pretrained base model must not resume runs of the old one
        from cvitkit.base_model import base_key

        config["base_model"] = base_key(profile, corpus())
    return config


def run_method(profile: str | Profile, suite: str, method: str, overrides: dict | None = None, variant: str = "",
               stream_length: int | None = None, force: bool = False, log=print) -> RunResult:
    """Train and evaluate ``method`` on ``suite`` for ``profile``; resumable, see the module docstring."""
    from cvitkit.data import corpus, load_profile_suite_data, load_suite
    from cvitkit.methods.base import build_method
    from cvitkit.train import ContinualTrainer, experience_seed, seed_everything

    profile = load_profile(profile) if isinstance(profile, str) else profile
    suite_spec = load_suite(suite)
    if suite_spec.protocol == "stream" and not stream_length:
        stream_length = suite_spec.stream.lengths[-1]
    if suite_spec.protocol != "stream":
        stream_length = None
    method_obj = build_method(method, method_preset(profile), overrides, suite=suite_spec, seed=profile.train.seed)
    config = run_config(profile, suite_spec, method_obj, variant=variant, stream_length=stream_length)
    run_dir = work_dir(profile.name) / "runs" / run_name(suite, method, variant, stream_length)
    state = process_state()
    # Under `accelerate launch` the main process resets the run folder, builds the data and pretrains the
    # base model; the others then read what it wrote instead of racing it.
    with state.main_process_first():
        if state.is_main_process:
            _start_or_resume(run_dir, config, force, log)
        suite_data = load_profile_suite_data(profile, suite_spec, build=True)
        model, processor = load_base(profile, corpus=corpus(), run_dir=run_dir if state.is_main_process else None,
                                     log=log)
    # Adapter initialisation draws from the global RNG; a loaded checkpoint does not reseed it, so
    # without this the weights would depend on what the process ran before (run order, pretraining).
    seed_everything(experience_seed(profile.train.seed, SETUP_SEED_INDEX))
    method_obj.setup(model, processor)
    tasks = {t.name: t for t in suite_spec.tasks}
    experiences = experiences_for(suite_data, stream_length, method_obj.joint)
    trainer = ContinualTrainer(method_obj, processor, tasks, suite_data.test, suite_data.image_root, run_dir,
                               profile.train, protocol=suite_spec.protocol, log=log)
    t0 = time.time()
    stages = trainer.run(experiences)
    if state.is_main_process:
        result = summarise_run(run_dir, list(tasks), suite_spec, stages, method_obj, wall_seconds=time.time() - t0)
        export_summary(run_dir, profile.results_dir / "runs" / run_name(suite, method, variant, stream_length))
    state.wait_for_everyone()
    return result if state.is_main_process else load_run(run_dir)


def process_state():
    """accelerate's view of the processes: one (a plain run) or several (``accelerate launch``)."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def run_named(profile: str | Profile, suite: str, run_id: str, stream_length: int | None = None,
              quantization: str = "", force: bool = False, log=print) -> RunResult:
    """Run a run id (``method`` or ``method__variant``, see :mod:`cvitkit.experiments`) on ``suite``.

    A variant may change the model preset (e.g. ``__large``) or data settings (e.g. ``__diverse``:
    diverse training instructions, built in their own data folder) or training settings (e.g. ``__seed1``:
    the same run with another seed); ``quantization`` ("none", "8bit",
    "4bit") overrides the profile's, which is how the notebooks' QLoRA switch works.
    """
    from dataclasses import replace

    from cvitkit.config import from_dict
    from cvitkit.data.config import DataConfig
    from cvitkit.experiments import resolve_run
    from cvitkit.models.spec import ModelConfig
    from cvitkit.train_config import TrainConfig

    profile = load_profile(profile) if isinstance(profile, str) else profile
    spec = resolve_run(run_id)
    model = {**asdict(profile.model), **spec.model}
    variant = spec.variant
    if quantization and quantization != profile.model.quantization:
        model["quantization"] = quantization
        variant = f"{variant}_{quantization}" if variant else quantization  # its own run folder
    data = from_dict(DataConfig, {**asdict(profile.data), **spec.data}, source=f"run '{run_id}' data")
    train = from_dict(TrainConfig, {**asdict(profile.train), **spec.train}, source=f"run '{run_id}' train")
    profile = replace(profile, model=from_dict(ModelConfig, model, source=f"run '{run_id}' model"), data=data,
                      train=train)
    return run_method(profile, suite, spec.method, overrides=spec.overrides, variant=variant,
                      stream_length=stream_length, force=force, log=log)


def _start_or_resume(run_dir: Path, config: dict, force: bool, log) -> None:
    path = run_dir / "config.json"
    key = config_hash(config)
    if path.is_file() and not force:
        old = json.loads(path.read_text())
        if old.get("config_hash") == key:
            return
        log(f"{run_dir}: the configuration changed since this run started; starting it afresh")
    if run_dir.exists():
        shutil.rmtree(run_dir)
    atomic_write_json(path, {**config, "config_hash": key, "provenance": provenance(seed=config["train"]["seed"])})


def summarise_run(run_dir: Path, task_order: list[str], suite_spec, stages, method, wall_seconds: float = 0.0):
    """Rebuild ``matrix.csv``, ``metrics.json`` and ``summary.json`` from the stage records."""
    from cvitkit.eval import metrics as M

    matrix = pd.DataFrame(
        [[s.scores.get(t, {}).get("score") for t in task_order] for s in stages],
        index=[s.name for s in stages], columns=task_order, dtype=float)
    matrix.index.name = "stage"
    if suite_spec.protocol == "stream":
        trained = matrix.drop(index="initial", errors="ignore")
        metrics = M.summarise_stream(trained.to_numpy(), ap_tasks=[task_order.index(t) for t in suite_spec.stream.ap_tasks
                                                                   if t in task_order])
    elif method.joint or not method.trains:
        final = matrix.iloc[-1]
        metrics = {"MFN": float(final.mean()), "MAA": float(final.mean()), "MFT": None, "BWT": None,
                   "note": "single stage: MAA reported as the final mean accuracy; BWT undefined"}
    else:
        trained = matrix.drop(index="initial", errors="ignore")
        zero = matrix.loc["initial"].to_numpy() if "initial" in matrix.index else None
        R = trained.to_numpy()
        # FWT reads R[t-1, t] (a task scored just before it is trained); eval_scope "seen" never
        # scores it, so the metric is left out instead of failing the whole summary.
        fwt_cells = [R[t - 1, t] for t in range(1, min(R.shape))]
        fwt_note = zero is not None and bool(np.isnan(fwt_cells).any())
        metrics = M.summarise(R, zero_shot=None if fwt_note else zero)
        if fwt_note:
            metrics["note"] = "FWT left out: it needs every task scored before it is trained (train.eval_scope: all)"
    parse_failures = {s.name: {t: v.get("parse_failures", 0) for t, v in s.scores.items()} for s in stages}
    logs = [s.log for s in stages if s.log.get("trained", True)]
    summary = {
        "stages": [s.name for s in stages],
        "adapter_parameters": {k: logs[-1].get(k) for k in ("adapter_total", "adapter_trainable")} if logs else {},
        "trainable_per_stage": [s.log.get("adapter_trainable") for s in stages],
        "step_seconds_median": (sorted(l["step_seconds_median"] for l in logs)[len(logs) // 2] if logs else None),
        "train_seconds": sum(l.get("train_seconds", 0) for l in logs),
        # wall_seconds covers this invocation only (a resume that found every stage finished records ~0);
        # stage_seconds adds up what the stages themselves recorded, so it survives resumes.
        "wall_seconds": wall_seconds,
        "stage_seconds": round(sum(s.log.get("wall_seconds", 0.0) for s in stages)
                               + sum(v.get("seconds", 0.0) for s in stages for v in s.scores.values()), 1),
        "parse_failures": parse_failures,
        "loss": [{"stage": s.name, "first": s.log.get("loss_first"), "last": s.log.get("loss_last")} for s in stages],
    }
    matrix.to_csv(run_dir / "matrix.csv", float_format="%.4f")
    atomic_write_json(run_dir / "metrics.json", _jsonable(metrics))
    atomic_write_json(run_dir / "summary.json", _jsonable(summary))
    return RunResult(run_dir, matrix, metrics, summary)


def _jsonable(obj):
    import math

    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "item"):
        obj = obj.item()
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj


def export_summary(run_dir: Path, dest: Path) -> Path:
    """Copy the small, committable summary files of a run to ``dest``, with its per-stage statistics and
    answer profiles (``answers.json``: distinct answers and the most frequent one, per stage and task)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in SUMMARY_FILES:
        if (run_dir / name).is_file():
            shutil.copy2(run_dir / name, dest / name)
    stats = {}
    for stage in sorted((run_dir / "stages").glob("*/statistics.json")):
        stats[stage.parent.name] = json.loads(stage.read_text())
    atomic_write_json(dest / "statistics.json", stats)
    atomic_write_json(dest / "answers.json", answer_profiles(run_dir))
    return dest


def answer_profiles(run_dir: Path) -> dict[str, dict[str, dict]]:
    """``{stage name: {task: answer profile}}`` from a run's saved predictions
    (:func:`cvitkit.eval.evaluate.answer_profile`): how many distinct answers each stage gave per task."""
    from cvitkit.eval.evaluate import answer_profile

    profiles = {}
    for stage_file in sorted((run_dir / "stages").glob("*/stage.json")):
        name = json.loads(stage_file.read_text()).get("name", stage_file.parent.name)
        profiles[name] = {
            pred.stem: answer_profile([json.loads(line) for line in pred.read_text(encoding="utf-8").splitlines() if line])
            for pred in sorted((stage_file.parent / "predictions").glob("*.jsonl"))}
    return profiles


def load_run(run_dir: str | Path) -> RunResult:
    run_dir = Path(run_dir)
    matrix = pd.read_csv(run_dir / "matrix.csv", index_col=0)
    return RunResult(run_dir, matrix, json.loads((run_dir / "metrics.json").read_text()),
                     json.loads((run_dir / "summary.json").read_text()))


def main(argv: list[str] | None = None) -> int:
    """One run from the command line; under ``accelerate launch`` it trains data-parallel over processes."""
    import argparse
    import sys

    from cvitkit.errors import CvitkitError
    from cvitkit.profiles import available_profiles

    parser = argparse.ArgumentParser(
        prog="python -m cvitkit.runner",
        description="Train and evaluate one run id on one suite (resumable). Several processes or GPUs: "
                    "accelerate launch --multi_gpu --num_processes 2 -m cvitkit.runner --suite coin --run lora_ft "
                    "(on a CPU-only machine the same command runs 2 CPU processes over gloo)")
    parser.add_argument("--profile", default="mini", choices=available_profiles())
    parser.add_argument("--suite", required=True, help="suite name (coin, mllmcl_dcl, mllmcl_acl, strcvit, ucit, ...)")
    parser.add_argument("--run", required=True, help="run id: a method or method__variant (configs/methods/)")
    parser.add_argument("--stream-length", type=int, help="chunks of a stream suite (default: its longest)")
    parser.add_argument("--quantization", default="", choices=["", "none", "8bit", "4bit"],
                        help="override the profile's quantization (4bit = QLoRA)")
    parser.add_argument("--data-root", help="real benchmark files (full profile)")
    parser.add_argument("--model", help="local Hugging Face-format model folder (full profile)")
    parser.add_argument("--force", action="store_true", help="start the run afresh instead of resuming")
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in (("data_root", args.data_root), ("model_path", args.model)) if v}
    try:
        result = run_named(load_profile(args.profile, **overrides), args.suite, args.run, args.stream_length,
                           args.quantization, args.force)
    except CvitkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if process_state().is_main_process:
        print(result.matrix.round(1).to_string())
        print(json.dumps({k: v for k, v in result.metrics.items() if not isinstance(v, (list, dict))}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
