"""environment.yml must not drift from pyproject.toml; reproduce.sh set-up and argument handling."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib

import yaml

from tests.conftest import REPO_ROOT


def _pyproject():
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def test_environment_yml_installs_the_project_with_every_extra():
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    conda_pkgs = [d for d in deps if isinstance(d, str)]
    pip_sections = [d["pip"] for d in deps if isinstance(d, dict)]
    # Only the interpreter and pip come from conda; everything else from pyproject through pip.
    assert sorted(re.split(r"[=<>]", p)[0] for p in conda_pkgs) == ["pip", "python"]
    python = next(p for p in conda_pkgs if p.startswith("python"))
    major, minor = map(int, python.split("=")[1].split(".")[:2])
    required = _pyproject()["project"]["requires-python"]
    assert (major, minor) >= tuple(map(int, required.removeprefix(">=").split(".")))
    assert len(pip_sections) == 1 and len(pip_sections[0]) == 1
    match = re.fullmatch(r"-e \.\[([\w,-]+)\]", pip_sections[0][0])
    assert match, pip_sections
    assert set(match.group(1).split(",")) == set(_pyproject()["project"]["optional-dependencies"])


def test_reproduce_sh_installs_the_same_extras_as_environment_yml():
    script = (REPO_ROOT / "reproduce.sh").read_text()
    extras = re.search(r'EXTRAS="\$\{CVITKIT_EXTRAS:-([\w,]+)\}"', script).group(1)
    assert set(extras.split(",")) == set(_pyproject()["project"]["optional-dependencies"])


def test_torch_is_not_pinned_to_a_build_in_pyproject():
    deps = _pyproject()["project"]["dependencies"]
    torch_dep = next(d for d in deps if d.startswith("torch"))
    # A range the on-disk CPU wheel satisfies; never '+cu' or an index URL.
    assert torch_dep.startswith("torch>=") and "+" not in torch_dep


def _run(*args, env=None, timeout=60):
    return subprocess.run(["bash", str(REPO_ROOT / "reproduce.sh"), *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def test_help_documents_commands_options_and_variables():
    out = _run("--help")
    assert out.returncode == 0
    for word in ("test", "bench", "--profile", "smoke|mini|full", "--only", "--force", "--data-root", "--model",
                 "TORCH_SPEC", "CVITKIT_VENV"):
        assert word in out.stdout, word


def test_unknown_argument_fails_fast_with_a_hint():
    out = _run("--profil", "mini")
    assert out.returncode == 2
    assert "unknown argument '--profil'" in out.stderr and "--help" in out.stderr
    out = _run("--profile")
    assert out.returncode == 2 and "--profile needs a value" in out.stderr


def _fake_venv(tmp_path):
    """A venv whose python only logs its arguments, to observe what set-up would install."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    log = tmp_path / "calls.log"
    fake = venv / "bin" / "python"
    fake.write_text(f'#!/usr/bin/env bash\necho "$*" >> {log}\nexit 0\n')
    fake.chmod(0o755)
    return venv, log


def test_setup_installs_torch_first_then_project_then_kernel(tmp_path):
    venv, log = _fake_venv(tmp_path)
    out = _run("setup", env={"CVITKIT_VENV": str(venv), "TORCH_SPEC": "torch==9.9.9"})
    assert out.returncode == 0, out.stderr
    calls = log.read_text().splitlines()
    installs = [c for c in calls if " install " in f" {c} "]
    assert "install -q torch==9.9.9" in installs[0]
    assert re.search(r"install -q -e \.\[notebooks,quant,embed,dev\]", installs[1])
    assert "ipykernel install --sys-prefix --name cvitkit" in installs[2]
    assert (venv / ".cvitkit-install").is_file()


def test_second_setup_reuses_the_venv_until_inputs_change(tmp_path):
    venv, log = _fake_venv(tmp_path)
    env = {"CVITKIT_VENV": str(venv), "TORCH_SPEC": "torch==9.9.9"}
    assert _run("setup", env=env).returncode == 0
    n_calls = len(log.read_text().splitlines())
    assert _run("setup", env=env).returncode == 0
    assert len(log.read_text().splitlines()) == n_calls  # nothing reinstalled
    out = _run("setup", env={**env, "TORCH_SPEC": "torch==9.9.8"})
    assert "changed" in out.stderr
    assert "install -q torch==9.9.8" in log.read_text()


def test_python_is_recent_enough():
    assert sys.version_info >= (3, 10)
