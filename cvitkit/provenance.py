"""Provenance and safe writes: every result file records how it was made and is written atomically."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
import time
from importlib import metadata
from pathlib import Path

from cvitkit.profiles import REPO_ROOT

PACKAGES = ("cvitkit", "torch", "transformers", "peft", "accelerate", "bitsandbytes", "tokenizers", "numpy",
            "pandas", "pillow", "papermill", "jupytext")


def work_dir(profile: str) -> Path:
    """Where bulky, regenerable outputs go (data, checkpoints, caches): ``runs/<profile>`` by default.

    Set ``CVITKIT_WORK`` to put them elsewhere (a larger disk, say). Never committed.
    """
    root = Path(os.environ.get("CVITKIT_WORK", REPO_ROOT / "runs"))
    return root / profile


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_json(path: str | Path, data) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def append_call(sidecar: str | Path, record: dict) -> Path:
    """Append ``record`` to the ``calls`` list of a table's JSON sidecar (created if missing), atomically:
    tables merged call by call keep every call's arguments and provenance beside them."""
    sidecar = Path(sidecar)
    calls = json.loads(sidecar.read_text()).get("calls", []) if sidecar.exists() else []
    return atomic_write_json(sidecar, {"calls": [*calls, record]})


def package_versions() -> dict[str, str | None]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit() -> str | None:
    """The repository's HEAD commit, with ``+dirty`` when tracked files have uncommitted changes."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                             check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def device_info() -> dict:
    import torch

    info = {"platform": platform.platform(), "python": platform.python_version(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "cuda": torch.cuda.is_available()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def provenance(**extra) -> dict:
    """A provenance record: time, git commit, package versions, device, plus ``extra`` (config, seed)."""
    return {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "git_commit": git_commit(),
            "packages": package_versions(), "device": device_info(), **extra}
