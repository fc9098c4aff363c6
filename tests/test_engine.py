"""Guarantees of the continual engine (issue #4): determinism, resume, crash safety, safe state, metrics.

Runs go through :func:`cvitkit.runner.run_method` on the five-task ``mllmcl_dcl`` suite at smoke size
with the ``micro`` model. The model takes the ``source: base`` path (a saved checkpoint, as in the
``mini`` profile), with the pretraining stage replaced by the session's saved micro model: loading a
checkpoint does not reseed, so this is the path where an unseeded adapter initialisation would show.
"""

from __future__ import annotations

import ast
import json
import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

import cvitkit.base_model
import cvitkit.methods.base
import cvitkit.train
from cvitkit.eval import metrics as M
from cvitkit.profiles import load_profile
from cvitkit.runner import run_method
from cvitkit.train import ContinualTrainer

SUITE = "mllmcl_dcl"
TASKS = ["RS", "Med", "AD", "Sci", "Fin"]
PACKAGE = Path(__file__).resolve().parent.parent / "cvitkit"


class Interrupted(RuntimeError):
    """Stands for a kill: raised from inside the engine at a chosen point."""


def _profile(seed: int = 0, **train):
    p = load_profile("smoke")
    return replace(p, data=replace(p.data, train_per_task=8, test_per_task=2),
                   model=replace(p.model, source="base", preset="micro"),
                   train=replace(p.train, batch_size=4, seed=seed, **train))


def _run(root: Path, micro_dir: Path, method: str, seed: int = 0, patches=(), **train):
    """One run with its work and results folders under ``root``; ``patches`` are (obj, name, value)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CVITKIT_WORK", str(root / "work"))
        mp.setenv("CVITKIT_RESULTS", str(root / "results"))
        mp.setattr(cvitkit.base_model, "ensure_base_model", lambda profile, log=print: micro_dir)
        for obj, name, value in patches:
            mp.setattr(obj, name, value)
        return run_method(_profile(seed, **train), SUITE, method, log=lambda *_: None)


def _stage_outputs(run_dir: Path) -> dict:
    """Everything a stage stores that must be reproducible (timings left out)."""
    out = {}
    for folder in sorted((run_dir / "stages").iterdir()):
        stage = json.loads((folder / "stage.json").read_text())
        preds = {f.name: [json.loads(line)["text"] for line in f.read_text().splitlines()]
                 for f in sorted((folder / "predictions").glob("*.jsonl"))}
        out[folder.name] = {"scores": {t: v["score"] for t, v in stage["scores"].items()}, "predictions": preds,
                            "method": json.loads((folder / "method.json").read_text()),
                            "loss": (stage["log"].get("loss_first"), stage["log"].get("loss_last"))}
    return out


def _tensors(run_dir: Path, stage: str, name: str = "adapter.safetensors") -> dict[str, torch.Tensor]:
    path = run_dir / "stages" / stage / name
    return load_file(str(path)) if path.is_file() else {}


def _assert_same_tensors(a: dict, b: dict, what: str) -> None:
    assert a and set(a) == set(b), f"{what}: different tensor names"
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=f"{what}: {k}")


def _assert_same_run(run_dir: Path, ref_dir: Path) -> None:
    stages = sorted(p.name for p in (ref_dir / "stages").iterdir())
    assert sorted(p.name for p in (run_dir / "stages").iterdir()) == stages
    assert _stage_outputs(run_dir) == _stage_outputs(ref_dir)
    for s in stages:
        _assert_same_tensors(_tensors(run_dir, s), _tensors(ref_dir, s), f"stage {s} adapter")
        method_ref = _tensors(ref_dir, s, "method.safetensors")
        if method_ref:
            _assert_same_tensors(_tensors(run_dir, s, "method.safetensors"), method_ref, f"stage {s} method state")
    pd.testing.assert_frame_equal(pd.read_csv(run_dir / "matrix.csv"), pd.read_csv(ref_dir / "matrix.csv"))
    assert json.loads((run_dir / "metrics.json").read_text()) == json.loads((ref_dir / "metrics.json").read_text())


@pytest.fixture(scope="module")
def reference(tmp_path_factory, micro_llava_dir):
    """Uninterrupted seed-0 runs of the methods whose resume is checked, each in its own folder."""
    return {m: _run(tmp_path_factory.mktemp(f"ref_{m}"), micro_llava_dir, m).run_dir
            for m in ("lora_ft", "replay", "ewc")}


def test_same_seed_same_results_other_seed_other_weights(reference, tmp_path, micro_llava_dir):
    ref = reference["lora_ft"]
    # the process RNG differs from the reference run's: the run must not depend on it
    torch.manual_seed(1234)
    random.seed(1234)
    again = _run(tmp_path / "again", micro_llava_dir, "lora_ft").run_dir
    _assert_same_run(again, ref)

    other = _run(tmp_path / "other", micro_llava_dir, "lora_ft", seed=1).run_dir
    final = sorted(p.name for p in (ref / "stages").iterdir())[-1]
    a, b = _tensors(ref, final), _tensors(other, final)
    assert set(a) == set(b)
    assert any(not torch.equal(a[k], b[k]) for k in a if "lora_" in k)


def _interrupt_before(index: int):
    """A ``train_experience`` replacement that dies when experience ``index`` starts training."""
    real = ContinualTrainer.train_experience

    def train_experience(self, experience):
        if experience.index == index:
            raise Interrupted(f"killed before experience {index}")
        return real(self, experience)

    return train_experience


@pytest.mark.parametrize("method", ["lora_ft", "replay", "ewc"])
def test_resume_after_the_first_experience_equals_uninterrupted(method, reference, tmp_path, micro_llava_dir):
    root = tmp_path / method
    with pytest.raises(Interrupted):
        _run(root, micro_llava_dir, method, patches=[(ContinualTrainer, "train_experience", _interrupt_before(1))])
    run_dir = root / "work" / "smoke" / "runs" / SUITE / method
    assert sorted(p.name for p in (run_dir / "stages").iterdir()) == ["000"]
    resumed = _run(root, micro_llava_dir, method).run_dir
    _assert_same_run(resumed, reference[method])
    # resumed on the same base model: one pretraining, read from the first stage on
    record = json.loads((resumed / "base_model.json").read_text())
    assert [e["from_stage"] for e in record["pretrainings"]] == [0]

    # the restored method state took part in the resumed experiences
    last = json.loads((resumed / "stages" / "004" / "stage.json").read_text())
    if method == "replay":
        meta = json.loads((resumed / "stages" / "001" / "method.json").read_text())
        assert len(meta["buffer"]["ids"]) == 16  # 8 records of each of the 2 finished tasks
        assert last["log"]["samples"] == 8 + 4 * 8  # new task plus the buffer of the 4 earlier ones
    if method == "ewc":
        assert last["log"]["loss_parts"]["ewc"] > 0
        assert any(k.startswith("fisher/") for k in _tensors(resumed, "001", "method.safetensors"))

    # the run's time adds up every stage, the one trained before the interruption included
    stages = [json.loads(p.read_text()) for p in sorted((resumed / "stages").glob("*/stage.json"))]
    expected = (sum(s["log"].get("wall_seconds", 0.0) for s in stages)
                + sum(v["seconds"] for s in stages for v in s["scores"].values()))
    summary = json.loads((resumed / "summary.json").read_text())
    assert expected > 0 and summary["stage_seconds"] == pytest.approx(expected, abs=0.1)


def _crash_in_training(at_index: int):
    """Dies after the first optimizer step of experience ``at_index``."""
    real = cvitkit.methods.base.Method.after_step

    def after_step(self):
        real(self)
        if self.experience_index == at_index:
            raise Interrupted(f"killed while training experience {at_index}")

    return (cvitkit.methods.base.Method, "after_step", after_step)


def _crash_while_publishing(at_index: int):
    """Dies after the stage's files (stage.json included) are in ``NNN.tmp`` but before the rename."""
    real = cvitkit.train.atomic_write_json

    def atomic_write_json(path, data):
        out = real(path, data)
        if Path(path).name == "stage.json" and Path(path).parent.name == f"{at_index:03d}.tmp":
            raise Interrupted(f"killed before publishing stage {at_index}")
        return out

    return (cvitkit.train, "atomic_write_json", atomic_write_json)


@pytest.mark.parametrize("crash", [_crash_in_training, _crash_while_publishing], ids=["training", "publishing"])
def test_crash_mid_experience_keeps_finished_stages_and_resumes_there(crash, reference, tmp_path, micro_llava_dir):
    root = tmp_path / "crash"
    with pytest.raises(Interrupted):
        _run(root, micro_llava_dir, "lora_ft", patches=[crash(2)])
    stages = root / "work" / "smoke" / "runs" / SUITE / "lora_ft" / "stages"
    finished = sorted(p.parent.name for p in stages.glob("*/stage.json") if p.parent.name.isdigit())
    assert finished == ["000", "001"] and not (stages / "002").exists()
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for s in finished for p in (stages / s).rglob("*")
              if p.is_file()}

    trained: list[int] = []
    real = ContinualTrainer.train_experience

    def counting(self, experience):
        trained.append(experience.index)
        return real(self, experience)

    resumed = _run(root, micro_llava_dir, "lora_ft", patches=[(ContinualTrainer, "train_experience", counting)])
    assert trained == [2, 3, 4]  # finished experiences are not retrained
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in before} == before  # nor rewritten
    assert not list(stages.glob("*.tmp"))
    _assert_same_run(resumed.run_dir, reference["lora_ft"])


def test_run_folder_holds_only_safetensors_json_csv(reference):
    """Every file of a run parses as safetensors, JSON, JSON lines or CSV: nothing needs unpickling."""
    readers = {".safetensors": lambda p: load_file(str(p)), ".json": lambda p: json.loads(p.read_text()),
               ".jsonl": lambda p: [json.loads(line) for line in p.read_text().splitlines()],
               ".csv": lambda p: pd.read_csv(p)}
    for run_dir in reference.values():
        files = [p for p in run_dir.rglob("*") if p.is_file()]
        assert any(p.suffix == ".safetensors" for p in files)
        odd = [str(p.relative_to(run_dir)) for p in files if p.suffix not in readers]
        assert not odd, f"{run_dir}: files that are not safetensors/JSON/CSV: {odd}"
        for p in files:
            readers[p.suffix](p)


def _unsafe_loads(source: str) -> list[str]:
    """Calls in ``source`` that could unpickle: torch.load without weights_only=True, pickle/joblib loads."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value.id if isinstance(node.func.value, ast.Name) else ""
            kw = {k.arg: k.value for k in node.keywords}
            if (owner, node.func.attr) == ("torch", "load"):
                safe = isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True
                if not safe:
                    found.append(f"line {node.lineno}: torch.load without weights_only=True")
            if owner in ("pickle", "joblib", "dill", "cloudpickle") and node.func.attr.startswith("load"):
                found.append(f"line {node.lineno}: {owner}.{node.func.attr}")
            if node.func.attr == "load" and isinstance(kw.get("allow_pickle"), ast.Constant) \
                    and kw["allow_pickle"].value is True:
                found.append(f"line {node.lineno}: load(allow_pickle=True)")
    return found


def test_unsafe_load_detector_flags_what_it_should():
    assert _unsafe_loads("import torch\ntorch.load('x')\n") == ["line 2: torch.load without weights_only=True"]
    assert _unsafe_loads("torch.load('x', weights_only=False)")
    assert _unsafe_loads("pickle.loads(b)") and _unsafe_loads("np.load('a', allow_pickle=True)")
    assert _unsafe_loads("torch.load('x', weights_only=True)\nnp.load('a')") == []


def test_kit_never_loads_pickles():
    problems = {str(p.relative_to(PACKAGE)): bad for p in PACKAGE.rglob("*.py")
                if (bad := _unsafe_loads(p.read_text(encoding="utf-8")))}
    assert not problems, f"unsafe loads (use safetensors/JSON, or torch.load(..., weights_only=True)): {problems}"


def test_written_matrix_and_metrics_equal_the_metrics_module(tmp_path, micro_llava_dir):
    """Scores are replaced by a known table (the micro model scores 0 everywhere), so orientation shows."""
    table = np.round(np.random.default_rng(7).uniform(0, 100, (6, 5)), 2)  # rows: initial, then each task
    stage_row = {"initial": 0, **{t: i + 1 for i, t in enumerate(TASKS)}}
    real = cvitkit.train.evaluate_task

    def evaluate_task(method, processor, records, task, image_root, desc="", **kwargs):
        result = real(method, processor, records, task, image_root, desc=desc, **kwargs)
        stage = desc.split(":")[0]
        return replace(result, score=float(table[stage_row[stage], TASKS.index(task.name)]))

    result = _run(tmp_path, micro_llava_dir, "lora_ft", eval_initial=True, eval_scope="all",
                  patches=[(cvitkit.train, "evaluate_task", evaluate_task)])
    written = pd.read_csv(result.run_dir / "matrix.csv", index_col=0)
    assert list(written.index) == ["initial", *TASKS] and list(written.columns) == TASKS
    np.testing.assert_allclose(written.to_numpy(), table, atol=5e-5)
    want = M.summarise(table[1:], zero_shot=table[0])
    assert want["BWT"] != 0 and "FWT" in want
    got = json.loads((result.run_dir / "metrics.json").read_text())
    assert set(got) == set(want)
    for k, v in want.items():
        assert got[k] == pytest.approx(v), k
    # and the stored CSV alone (4 decimals) gives the same numbers through the metrics module
    again = M.summarise(written.drop(index="initial").to_numpy(), zero_shot=written.loc["initial"].to_numpy())
    for k, v in want.items():
        assert again[k] == pytest.approx(v, abs=1e-3), k


def test_initial_row_with_seen_scope_summarises_without_fwt(tmp_path):
    """eval_initial with eval_scope "seen" never scores a task before its training: no FWT, no crash."""
    from cvitkit.data import load_suite
    from cvitkit.methods.base import build_method
    from cvitkit.runner import summarise_run
    from cvitkit.train import StageRecord

    table = np.round(np.random.default_rng(3).uniform(0, 100, (6, 5)), 2)
    stages = [StageRecord(0, "initial", {t: {"score": table[0, j]} for j, t in enumerate(TASKS)}, {"trained": False})]
    stages += [StageRecord(i + 1, name, {t: {"score": table[i + 1, j]} for j, t in enumerate(TASKS[: i + 1])},
                           {"step_seconds_median": 0.1, "train_seconds": 1.0})
               for i, name in enumerate(TASKS)]
    result = summarise_run(tmp_path, TASKS, load_suite(SUITE), stages, build_method("lora_ft"))
    lower = np.where(np.tril(np.ones((5, 5), dtype=bool)), table[1:], np.nan)
    want = M.summarise(lower)
    assert "FWT" not in result.metrics and "eval_scope" in result.metrics["note"]
    for k, v in want.items():
        assert result.metrics[k] == pytest.approx(v), k


def test_exported_answer_profiles_count_the_saved_predictions(reference, tmp_path):
    from cvitkit.eval.forms import answer_form, reference_form
    from cvitkit.runner import export_summary

    run_dir = reference["lora_ft"]
    answers = json.loads((export_summary(run_dir, tmp_path / "summary") / "answers.json").read_text())
    stage = sorted((run_dir / "stages").glob("*/stage.json"))[-1]
    name = json.loads(stage.read_text())["name"]
    for pred in (stage.parent / "predictions").glob("*.jsonl"):
        rows = [json.loads(line) for line in pred.read_text().splitlines() if line]
        texts = [r["text"].strip().lower() for r in rows]
        profile = answers[name][pred.stem]
        assert profile["n"] == len(texts) and profile["distinct"] == len(set(texts))
        assert texts.count(profile["top"]) == max(texts.count(t) for t in texts)
        kept = sum(answer_form(r["text"]) == reference_form(r["answer"]) for r in rows) / len(rows)
        assert profile["form_match"] == pytest.approx(kept, abs=5e-4)
