"""Every notebook runs under papermill at smoke size (marker: notebooks)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.notebooks


def test_setup_check_notebook_runs_and_records(tmp_path):
    from cvitkit.notebooks import execute_notebook

    execute_notebook("00_setup_check", tmp_path / "00.ipynb", {"profile": "smoke"})
    record = json.loads((Path(os.environ["CVITKIT_RESULTS"]) / "smoke" / "setup_check.json").read_text())
    assert record["packages"]["torch"] and record["parameters"]["total"] > 1e6
    assert record["loss"] > 0 and record["forward_ms"] > 0
    if record["qlora"]["checked"]:
        assert record["qlora"]["quantised_layer_types"] == ["Linear4bit"]
        assert record["qlora"]["losses"][-1] < record["qlora"]["losses"][0]


# ---------------------------------------------------------------------------------------------------
# Tables notebooks (10-13): run against the small fixed results fixture of cvitkit.report.testing
# ---------------------------------------------------------------------------------------------------

TABLE_NOTEBOOKS = {"10_strlora_tables": "strlora", "11_branchlora_tables": "branchlora",
                   "12_mllmcl_tables": "mllmcl", "13_cram_tables": "cram"}


@pytest.fixture(scope="module")
def report_fixture(tmp_path_factory):
    from cvitkit.report.testing import write_fixture

    return write_fixture(tmp_path_factory.mktemp("report_results"))


@pytest.mark.parametrize("name", sorted(TABLE_NOTEBOOKS))
def test_tables_notebook_writes_every_table_and_figure(name, report_fixture, tmp_path):
    from cvitkit.notebooks import execute_notebook
    from cvitkit.report import paper_tables, read_table_csv

    paper = TABLE_NOTEBOOKS[name]
    execute_notebook(name, tmp_path / f"{name}.ipynb", {"profile": "smoke", "results_dir": str(report_fixture)})
    tables = report_fixture / "tables"
    for spec in paper_tables(paper):
        for suffix in (".csv", ".md", ".tex"):
            assert (tables / f"{spec.id}{suffix}").is_file(), f"{name} did not write {spec.id}{suffix}"
        frame = read_table_csv(tables / f"{spec.id}.csv")
        assert "run status" in frame.columns
        assert all(c.endswith(("(measured)", "(kit config)")) or "(reported: " in c
                   for c in frame.columns if c not in ("kit run", "run status"))
    assert (tables / f"{paper}_tables.md").is_file()
    pngs = sorted((report_fixture / "figures").glob(f"{paper}_*.png"))
    assert pngs, f"{name} wrote no figure"
    executed = json.loads((tmp_path / f"{name}.ipynb").read_text())
    assert not any(o.get("output_type") == "error" for c in executed["cells"] for o in c.get("outputs", []))


def test_data_preparation_notebook_builds_suites_figures_and_card(tmp_path):
    import pandas as pd

    from cvitkit.notebooks import execute_notebook

    execute_notebook("01_data_preparation", tmp_path / "01.ipynb", {"profile": "smoke"})
    results = Path(os.environ["CVITKIT_RESULTS"]) / "smoke"
    summary = json.loads((results / "data_summary.json").read_text())
    assert {"coin", "mllmcl_dcl", "mllmcl_acl", "strcvit", "ucit"} <= set(summary["sizes"])
    assert summary["sizes"]["coin"]["ScienceQA"] == {"train": 24, "test": 8}
    assert summary["streams"]["strcvit_25"]["recurring_tasks"] and not summary["streams"]["strcvit_15"]["empty_chunks"]
    card = pd.read_csv(results / "tables" / "dataset_card.csv")
    assert {"task", "family", "domain", "scorer", "train", "test"} <= set(card.columns)
    assert (card["suite"] == "strcvit").sum() == 11
    assert (results / "figures" / "stream_composition_strcvit.png").stat().st_size > 10_000
    assert (results / "figures" / "data_grid_coin.png").is_file()
    assert (Path(os.environ["CVITKIT_WORK"]) / "smoke" / "data" / "coin" / "_finished.json").is_file()


# ---------------------------------------------------------------------------------------------------
# Training, evaluation, ablation and memory notebooks (02, 03, 20, 21): real smoke-size runs on the
# 4-task MLLM-CL ACL suite, in folders of their own so that no other test's runs are mixed in.
# ---------------------------------------------------------------------------------------------------

ACL_TASKS = ["OCR", "Math", "VP", "GUI"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Notebook 02 run once (lora_ft on mllmcl_acl); later tests read and reuse its run."""
    from cvitkit.notebooks import execute_notebook

    root = tmp_path_factory.mktemp("train_nb")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CVITKIT_RESULTS", str(root / "results"))
        mp.setenv("CVITKIT_WORK", str(root / "work"))
        execute_notebook("02_train", root / "02.ipynb",
                         {"profile": "smoke", "suite": "mllmcl_acl", "runs": ["lora_ft"]})
        yield root


def _no_errors(executed: Path) -> bool:
    cells = json.loads(executed.read_text())["cells"]
    return not any(o.get("output_type") == "error" for c in cells for o in c.get("outputs", []))


def test_train_notebook_writes_a_lower_triangular_matrix_and_metrics(trained):
    import pandas as pd

    run = trained / "results" / "smoke" / "runs" / "mllmcl_acl" / "lora_ft"
    matrix = pd.read_csv(run / "matrix.csv", index_col=0)
    assert list(matrix.index) == ACL_TASKS and list(matrix.columns) == ACL_TASKS
    for i, task in enumerate(ACL_TASKS):  # task-incremental: only tasks seen so far are evaluated
        assert matrix.loc[task].iloc[: i + 1].notna().all() and matrix.loc[task].iloc[i + 1:].isna().all()
    scores = matrix.to_numpy().ravel()
    scores = scores[~pd.isna(scores)]
    assert len(scores) == 10 and ((scores >= 0) & (scores <= 100)).all()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["MFN"] == pytest.approx(matrix.iloc[-1].mean(), abs=1e-3)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["adapter_parameters"]["adapter_trainable"] > 0 and summary["train_seconds"] > 0
    assert summary["stages"] == ACL_TASKS
    stages = sorted((trained / "work" / "smoke" / "runs" / "mllmcl_acl" / "lora_ft" / "stages").iterdir())
    assert len([s for s in stages if s.is_dir()]) == len(ACL_TASKS)
    assert _no_errors(trained / "02.ipynb")


def test_evaluate_notebook_tabulates_the_trained_run(trained, tmp_path, monkeypatch):
    import pandas as pd

    from cvitkit.notebooks import execute_notebook

    results = trained / "results" / "smoke"
    monkeypatch.setenv("CVITKIT_WORK", str(trained / "work"))  # the run's records give the chance levels
    execute_notebook("03_evaluate", tmp_path / "03.ipynb",
                     {"profile": "smoke", "suite": "mllmcl_acl", "results_dir": str(results)})
    learn = pd.read_csv(results / "tables" / "mllmcl_acl_learnability.csv", index_col=0)
    matrix = pd.read_csv(results / "runs" / "mllmcl_acl" / "lora_ft" / "matrix.csv", index_col=0)
    assert list(learn.index) == ACL_TASKS
    for task in ACL_TASKS:
        assert learn.loc[task, "LoRA-FT R_tt"] == pytest.approx(matrix.loc[task, task])
        assert 0 <= learn.loc[task, "chance"] <= 100
        assert learn.loc[task, "chance"] <= learn.loc[task, "best constant"] <= 100
        assert 0 <= learn.loc[task, "question prior"] <= 100 and 0 <= learn.loc[task, "question-type prior"] <= 100
        bar = max(learn.loc[task, c] for c in ("best constant", "question prior", "question-type prior"))
        assert learn.loc[task, "LoRA-FT - bar"] == pytest.approx(matrix.loc[task, task] - bar, abs=0.06)
        assert learn.loc[task, "learned"] == ("yes" if matrix.loc[task, task] - bar >= 10 else "no")
    table = pd.read_csv(results / "tables" / "mllmcl_acl_metrics.csv", index_col=0)
    metrics = json.loads((results / "runs" / "mllmcl_acl" / "lora_ft" / "metrics.json").read_text())
    assert table.loc["mllmcl_acl/lora_ft", "MFN"] == pytest.approx(metrics["MFN"], abs=0.01)
    assert table.loc["mllmcl_acl/lora_ft", "adapter params"] > 0
    assert (results / "figures" / "mllmcl_acl" / "lora_ft_matrix.png").stat().st_size > 5_000


def test_ablation_notebook_reuses_the_baseline_and_trains_the_switch(trained, tmp_path):
    import pandas as pd

    from cvitkit.notebooks import execute_notebook

    results = trained / "results" / "smoke"
    baseline = json.loads((results / "runs" / "mllmcl_acl" / "lora_ft" / "summary.json").read_text())
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CVITKIT_RESULTS", str(trained / "results"))
        mp.setenv("CVITKIT_WORK", str(trained / "work"))
        execute_notebook("20_ablations", tmp_path / "20.ipynb",
                         {"profile": "smoke", "suite": "mllmcl_acl", "method": "lora_ft",
                          "switches": {"rank_4": {"rank": 4}}})
    table = pd.read_csv(results / "tables" / "ablation_mllmcl_acl_lora_ft.csv", index_col=0)
    assert list(table.index) == ["without switches", "rank_4"]
    # reused, not retrained: the baseline's training time is the one notebook 02 recorded
    assert table.loc["without switches", "train s"] == pytest.approx(baseline["train_seconds"], abs=1e-3)
    # rank 4 against the mini preset's 32: fewer LoRA parameters (the trainable projector is the same)
    assert table.loc["rank_4", "trainable params"] < table.loc["without switches", "trainable params"]
    finals = table[[f"final {t}" for t in ACL_TASKS]].to_numpy()
    assert ((finals >= 0) & (finals <= 100)).all()
    assert {"ACC", "MAA", "BWT", "Δ ACC vs baseline"} <= set(table.columns)
    assert table.loc["without switches", "Δ ACC vs baseline"] == 0
    config = json.loads((trained / "work" / "smoke" / "runs" / "mllmcl_acl" / "lora_ft__abl-rank_4" /
                         "config.json").read_text())
    assert config["method_config"]["rank"] == 4
    assert "rank_4" in (results / "tables" / "ablation_mllmcl_acl_lora_ft.md").read_text()
    for name in ("metrics", "tasks"):
        assert (results / "figures" / f"ablation_mllmcl_acl_lora_ft_{name}.png").stat().st_size > 5_000


def test_qlora_memory_notebook_measures_and_estimates(tmp_path):
    import importlib.util

    import pandas as pd

    from cvitkit.notebooks import execute_notebook

    out = tmp_path / "out"
    execute_notebook("21_qlora_memory", tmp_path / "21.ipynb",
                     {"profile": "smoke", "preset": "micro", "batch": 2, "steps": 1, "results_dir": str(out)})
    record = json.loads((out / "qlora_memory.json").read_text())
    rows = {(r["precision"], r["checkpointing"]): r for r in record["measured"]}
    expected = {"fp32", "bf16"} | ({"4bit"} if importlib.util.find_spec("bitsandbytes") else set())
    assert {p for p, _ in rows} == expected
    for precision in expected:
        assert rows[precision, True]["activations"] < rows[precision, False]["activations"]
        assert rows[precision, False]["step_ms"] > 0
    assert rows["bf16", False]["weights"] == pytest.approx(rows["fp32", False]["weights"] / 2, rel=0.01)
    if "4bit" in expected:
        assert rows["4bit", False]["weights"] < rows["fp32", False]["weights"]
        assert rows["4bit", False]["quant_state"] > 0
    # the adapter state is the same whatever the base precision
    assert len({r["optimizer_state"] for r in rows.values()}) == 1
    estimate = pd.DataFrame(record["estimate"]["rows"])
    assert (estimate["fits"] == (estimate["total"] <= 12.0 - 1.0)).all()
    assert not estimate.loc[estimate["quantization"] == "none", "fits"].any()
    assert estimate.loc[(estimate["quantization"] == "4bit") & estimate["checkpointing"] & (estimate["batch"] == 1),
                        "fits"].all()
    for name in ("qlora_memory_tiny", "qlora_memory_llava15_7b"):
        assert (out / "tables" / f"{name}.csv").is_file() and (out / "tables" / f"{name}.md").is_file()
        assert (out / "figures" / f"{name}.png").stat().st_size > 5_000


def test_ablation_arms_from_variants_dicts_and_bad_input():
    from cvitkit.ablation import BASELINE, ablation_arms
    from cvitkit.errors import ConfigError

    arms = ablation_arms("branchlora", "all")
    assert arms[0].name == BASELINE and arms[0].run_id == "branchlora"
    names = [a.name for a in arms[1:]]
    assert "sparse" in names and "large" not in names  # a variant that swaps the model is no ablation
    assert next(a for a in arms if a.name == "sparse").overrides["top_k"] == 2
    custom = ablation_arms("lora_ft", {"r4": {"rank": 4}})[1]
    assert custom.run_id == "" and custom.variant == "abl-r4" and custom.overrides == {"rank": 4}
    with pytest.raises(ConfigError, match="no variant 'nope'.*Declared variants: .*sparse"):
        ablation_arms("branchlora", ["nope"])
    with pytest.raises(ConfigError, match="non-empty dict"):
        ablation_arms("lora_ft", {"r4": 4})
    with pytest.raises(ConfigError, match="letters, digits"):
        ablation_arms("lora_ft", {"r 4/x": {"rank": 4}})


def test_tables_stage_runs_the_memory_notebook_on_cpu_profiles_only():
    from cvitkit.pipeline import stage_by_name
    from cvitkit.profiles import load_profile

    stage = stage_by_name("tables")
    for name in ("smoke", "mini"):
        jobs = {j.job_id: j for j in stage.jobs(load_profile(name))}
        assert jobs["qlora_memory"].notebook == "21_qlora_memory"
        assert jobs["qlora_memory"].parameters == {"profile": name}
    full = load_profile("full", model_path="/models/llava")
    assert "qlora_memory" not in {j.job_id for j in stage.jobs(full)}


def test_widget_state_is_stripped_and_printed_text_kept(tmp_path):
    import nbformat

    from cvitkit.notebooks import WIDGET_MIME, strip_widget_state

    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"m": {}}}}
    cell = nbformat.v4.new_code_cell("bar()")
    cell.outputs = [nbformat.v4.new_output("display_data", data={WIDGET_MIME: {"model_id": "m"},
                                                                 "text/plain": "train: 100%|###| 63/63"}),
                    nbformat.v4.new_output("stream", text="loss 1.2\n")]
    nb.cells.append(cell)
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    assert strip_widget_state(path) == 2
    out = nbformat.read(path, as_version=4)
    assert "widgets" not in out.metadata
    assert out.cells[0].outputs[0]["data"] == {"text/plain": "train: 100%|###| 63/63"}
    assert out.cells[0].outputs[1]["text"] == "loss 1.2\n"
    assert strip_widget_state(path) == 0
