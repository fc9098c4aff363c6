"""`accelerate launch` with two CPU processes: data-parallel training, one writer, the same run folder."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

TESTS = Path(__file__).resolve().parent
DRIVER = textwrap.dedent(f"""
    import sys

    sys.path.insert(0, {str(TESTS)!r})
    from conftest import micro_smoke
    from cvitkit.runner import run_method

    run_method(micro_smoke(batch_size=2), "mllmcl_dcl", "lora_ft", log=lambda *_: None)
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_cpu_processes_shard_the_batches_and_write_one_run_folder(tmp_path):
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    env = {**os.environ, "CVITKIT_WORK": str(tmp_path / "work"), "CVITKIT_RESULTS": str(tmp_path / "results"),
           "OMP_NUM_THREADS": "1"}
    # --multi_gpu picks accelerate's torchrun launcher; without a GPU the processes pair up over gloo
    # (MULTI_CPU). `--cpu` would start a single process unless mpirun is configured.
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(_free_port()), str(driver)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    run_dir = tmp_path / "work" / "smoke" / "runs" / "mllmcl_dcl" / "lora_ft"
    matrix = pd.read_csv(run_dir / "matrix.csv", index_col=0)
    assert list(matrix.columns) == ["RS", "Med", "AD", "Sci", "Fin"] and len(matrix) == 5
    assert not list((run_dir / "stages").glob("*.tmp")), "a half-written stage folder was left behind"
    for stage in sorted((run_dir / "stages").glob("*/stage.json")):
        log = json.loads(stage.read_text())["log"]
        # 6 samples at batch 2 = 3 batches; each of the 2 processes takes 2 of them (accelerate's even split)
        assert log["micro_steps"] == 2 and log["optimizer_steps"] == 2
    assert (tmp_path / "results" / "smoke" / "runs" / "mllmcl_dcl" / "lora_ft" / "metrics.json").is_file()
