"""Pipeline stages: resume (skip finished jobs), --force, unbuilt stages, CLI."""

from __future__ import annotations

import pytest

from cvitkit import pipeline
from cvitkit.errors import CvitkitError
from cvitkit.pipeline import Job, Stage, run_stage
from cvitkit.profiles import load_profile


@pytest.fixture
def calls(monkeypatch, tmp_path):
    monkeypatch.setenv("CVITKIT_WORK", str(tmp_path / "work"))
    monkeypatch.setenv("CVITKIT_RESULTS", str(tmp_path / "results"))
    seen = []
    monkeypatch.setattr("cvitkit.notebooks.execute_notebook", lambda name, out, params: seen.append((name, params)))
    return seen


def _stage(jobs):
    return Stage("setup_check", "00_setup_check", "test stage", 2, jobs=lambda p: jobs)


def test_finished_jobs_are_skipped_and_force_redoes_them(calls):
    profile = load_profile("smoke")
    stage = _stage([Job("a", {"x": 1}), Job("b", {"x": 2})])
    assert run_stage(profile, stage, log=lambda *_: None) == "done"
    assert [c[1]["x"] for c in calls] == [1, 2]
    assert run_stage(profile, stage, log=lambda *_: None) == "skipped"
    assert len(calls) == 2
    assert run_stage(profile, stage, force=True, log=lambda *_: None) == "done"
    assert len(calls) == 4


def test_changed_parameters_rerun_only_that_job(calls):
    profile = load_profile("smoke")
    run_stage(profile, _stage([Job("a", {"x": 1}), Job("b", {"x": 2})]), log=lambda *_: None)
    run_stage(profile, _stage([Job("a", {"x": 1}), Job("b", {"x": 3})]), log=lambda *_: None)
    assert [c[1]["x"] for c in calls] == [1, 2, 3]


def test_failed_job_leaves_no_marker_so_it_reruns(monkeypatch, tmp_path):
    monkeypatch.setenv("CVITKIT_WORK", str(tmp_path / "work"))
    attempts = []

    def flaky(name, out, params):
        attempts.append(params["x"])
        if len(attempts) == 2:
            raise RuntimeError("killed")

    monkeypatch.setattr("cvitkit.notebooks.execute_notebook", flaky)
    profile = load_profile("smoke")
    stage = _stage([Job("a", {"x": 1}), Job("b", {"x": 2})])
    with pytest.raises(RuntimeError):
        run_stage(profile, stage, log=lambda *_: None)
    run_stage(profile, stage, log=lambda *_: None)
    assert attempts == [1, 2, 2]  # 'a' was finished and kept; only 'b' ran again


def test_unbuilt_stage_says_so(calls):
    messages = []
    stage = Stage("future", "99_not_there", "later", 42)
    assert run_stage(load_profile("smoke"), stage, log=messages.append) == "not built"
    assert "not built yet" in messages[0] and "#42" in messages[0]
    assert calls == []


def test_unknown_stage():
    with pytest.raises(CvitkitError, match="unknown stage 'trian'"):
        pipeline.stage_by_name("trian")


def test_stages_command_lists_every_stage(capsys):
    assert pipeline.main(["stages"]) == 0
    out = capsys.readouterr().out
    for stage in pipeline.STAGES:
        assert stage.name in out


def test_prepare_runs_only_when_a_job_is_unfinished(calls):
    prepared = []
    stage = Stage("setup_check", "00_setup_check", "test stage", 2, jobs=lambda p: [Job("a", {"x": 1})],
                  prepare=lambda profile, jobs, log: prepared.append(jobs))
    profile = load_profile("smoke")
    run_stage(profile, stage, jobs=3, log=lambda *_: None)
    run_stage(profile, stage, jobs=3, log=lambda *_: None)  # finished: neither prepare nor the notebook
    assert prepared == [3] and len(calls) == 1


def test_resolve_jobs(monkeypatch):
    from cvitkit import run_pool

    monkeypatch.setattr(run_pool, "usable_cores", lambda: 8)
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert run_pool.resolve_jobs(0, 10) == run_pool.MAX_AUTO_JOBS
    assert run_pool.resolve_jobs(0, 2) == 2  # never more processes than runs
    assert run_pool.resolve_jobs(3, 10) == 3
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    assert run_pool.resolve_jobs(0, 10) == 1  # one process owns the GPU
    with pytest.raises(CvitkitError, match="--jobs"):
        run_pool.resolve_jobs(-1, 10)


def test_pool_starts_the_longest_known_run_first(monkeypatch, tmp_path):
    import json

    from cvitkit import run_pool

    monkeypatch.setenv("CVITKIT_RESULTS", str(tmp_path / "results"))
    profile = load_profile("smoke")
    summaries = {"coin/lora_ft": {"wall_seconds": 10},  # written before stage_seconds existed
                 "coin/ewc": {"wall_seconds": 0.2, "stage_seconds": 120},  # a resume that found it finished
                 "strcvit_25chunks/strlora": {"wall_seconds": 300, "stage_seconds": 290}}
    for folder, summary in summaries.items():
        (profile.results_dir / "runs" / folder).mkdir(parents=True)
        (profile.results_dir / "runs" / folder / "summary.json").write_text(json.dumps(summary))
    runs = [run_pool.PlannedRun("coin", "lora_ft"), run_pool.PlannedRun("coin", "moelora"),
            run_pool.PlannedRun("coin", "ewc"), run_pool.PlannedRun("strcvit", "strlora")]
    assert [run_pool.previous_seconds(profile, r) for r in runs] == [10, 0, 120, 290]


def test_a_failed_run_names_its_log_and_the_others_finish(monkeypatch, tmp_path):
    """Worker processes really run (spawned): one run id is unknown, the other is a zero-shot run."""
    from cvitkit.run_pool import PlannedRun, train_in_parallel

    monkeypatch.setenv("CVITKIT_WORK", str(tmp_path / "work"))
    monkeypatch.setenv("CVITKIT_RESULTS", str(tmp_path / "results"))
    profile = load_profile("smoke", suites=["coin"])
    messages = []
    with pytest.raises(CvitkitError, match=r"coin/no_such_method failed .*coin__no_such_method\.log"):
        train_in_parallel(profile, [PlannedRun("coin", "no_such_method"), PlannedRun("coin", "zero_shot")], 2,
                          log=messages.append)
    assert any("coin/zero_shot finished" in m for m in messages)
    assert (profile.results_dir / "runs" / "coin" / "zero_shot" / "summary.json").is_file()
    assert "no_such_method" in (tmp_path / "work" / "smoke" / "logs" / "coin__no_such_method.log").read_text()


def test_changed_inputs_rerun_the_job_without_reaching_the_notebook(calls):
    profile = load_profile("smoke")
    run_stage(profile, _stage([Job("a", {"x": 1}, inputs={"runs": ["lora_ft"]})]), log=lambda *_: None)
    run_stage(profile, _stage([Job("a", {"x": 1}, inputs={"runs": ["lora_ft"]})]), log=lambda *_: None)
    assert len(calls) == 1
    run_stage(profile, _stage([Job("a", {"x": 1}, inputs={"runs": ["lora_ft", "replay"]})]), log=lambda *_: None)
    assert len(calls) == 2 and calls[-1][1] == {"x": 1}  # inputs are not papermill parameters


def test_evaluation_and_table_jobs_depend_on_the_plan(monkeypatch):
    profile = load_profile("smoke")
    before = {j.job_id: j.key for j in [*pipeline._evaluate_jobs(profile), *pipeline._table_jobs(profile)]}
    grown = {suite: [*runs, "replay"] for suite, runs in pipeline._suite_plan(profile).items()}
    monkeypatch.setattr(pipeline, "_suite_plan", lambda p: grown)
    after = {j.job_id: j.key for j in [*pipeline._evaluate_jobs(profile), *pipeline._table_jobs(profile)]}
    changed = [job for job in before if before[job] != after[job]]
    assert set(changed) == set(before) - {"qlora_memory"}  # the memory notebook reads no run
