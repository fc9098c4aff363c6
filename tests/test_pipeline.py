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
