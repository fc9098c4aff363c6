"""Real-data layouts (configs/data_layout.md): a tiny fixture of each benchmark's files loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from cvitkit.data import chunk_stream, load_suite, load_suite_data, task_stream
from cvitkit.errors import DataError

REAL_SUITES = ["coin", "mllmcl_dcl", "mllmcl_acl", "strcvit", "ucit", "trigap"]


def _image(root: Path, rel: str) -> str:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 30), "gray").save(path)
    return rel


def write_fixture(data_root: Path, suite_name: str, jsonl_test: bool = False, n_chunks: int = 15) -> None:
    """Write a few records per task at the paths the suite YAML names (as the benchmark ships them)."""
    suite = load_suite(suite_name)
    for t in suite.tasks:
        img_root = data_root / t.real["image_root"]
        img = _image(img_root, f"{t.name.lower()}/0001.jpg")
        # test files as the benchmarks write them: no <image> token, numeric or list answers
        answers = {"Fin": "Yes", "Math": 7, "TextVQA": ["sun"] * 10}.get(t.name, "cat")
        tests = [{"question_id": i, "image": img, "text": f"What is shown? ({i})", "answer": answers} for i in range(2)]
        path = data_root / t.real["test"]
        path.parent.mkdir(parents=True, exist_ok=True)
        if jsonl_test:
            path.write_text("".join(json.dumps(r) + "\n" for r in tests))
        else:
            path.write_text(json.dumps(tests))
        if t.real.get("train"):
            train = [{"id": f"{t.name}-{i}", "image": img, "conversations": [
                {"from": "human", "value": "<image>\nWhat is shown?"}, {"from": "gpt", "value": "a cat"}]}
                for i in range(3)]
            path = data_root / t.real["train"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(train))
    if suite.stream is not None:
        img_root = data_root / suite.tasks[0].real["image_root"]
        for k in range(1, n_chunks + 1):
            recs = [{"id": f"c{k}-{i}", "image": _image(img_root, f"chunks/{k}_{i}.jpg"), "task": task,
                     "conversations": [{"from": "human", "value": "<image>\nQ?"}, {"from": "gpt", "value": "A"}]}
                    for i, task in enumerate(suite.task_names[k % 3: k % 3 + 2])]
            path = data_root / suite.stream.real_chunks.format(index=k)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(recs))


@pytest.mark.parametrize("suite_name", REAL_SUITES)
def test_each_benchmark_layout_loads(tmp_path, suite_name):
    write_fixture(tmp_path, suite_name, jsonl_test=suite_name == "ucit")
    data = load_suite_data(suite_name, data_root=tmp_path, check_images="open")
    suite = data.suite
    assert data.source == "real" and data.image_root == tmp_path
    assert list(data.test) == suite.task_names
    for t in suite.tasks:
        rec = data.test[t.name][0]
        assert rec["text"].startswith("<image>\n") and rec["task"] == t.name
        assert (tmp_path / rec["image"]).is_file()  # image paths are rebased onto the data root
        answers = rec["answer"] if isinstance(rec["answer"], list) else [rec["answer"]]
        assert all(isinstance(a, str) for a in answers)
        if t.prompt_suffix:
            assert rec["text"].endswith(t.prompt_suffix)
    if suite.stream is None:
        stream = task_stream(data)
        assert [e.task_name for e in stream] == suite.task_names
        assert stream[0].dataset[0]["pil_image"].size == (40, 30)
    else:
        assert sorted(data.chunks) == [15]  # only 15 chunk files: the 20/25-chunk streams are absent
        chunks = chunk_stream(data, 15)
        assert len(chunks) == 15 and all(len(c) == 2 for c in chunks)
        assert set(chunks[0].task_counts) <= set(suite.task_names)


def test_per_sample_suffix_rule_and_numbers(tmp_path):
    write_fixture(tmp_path, "mllmcl_dcl")
    data = load_suite_data("mllmcl_dcl", data_root=tmp_path)
    assert data.test["Fin"][0]["text"].endswith("Only answer with yes or no directly.")  # GT is yes/no
    assert data.test["Med"][0]["text"].endswith("Answer the question with a single word (or phrase).")
    write_fixture(tmp_path, "mllmcl_acl")
    acl = load_suite_data("mllmcl_acl", data_root=tmp_path)
    assert acl.test["Math"][0]["answer"] == "7" and acl.test["Math"][0]["question_id"] == 0


def test_missing_real_file_names_dataset_path_and_source(tmp_path):
    write_fixture(tmp_path, "coin")
    missing = tmp_path / "CoIN/Instructions/GQA/test.json"
    missing.unlink()
    with pytest.raises(DataError) as exc:
        load_suite_data("coin", data_root=tmp_path)
    msg = str(exc.value)
    assert "coin" in msg and "GQA test file" in msg and str(missing) in msg
    assert "Zacks-Chen/CoIN" in msg and "configs/data_layout.md" in msg and "Fix:" in msg
    write_fixture(tmp_path, "strcvit", n_chunks=3)
    with pytest.raises(DataError, match=r"training chunk 4.*data_004\.json.*chanceche/StrCVIT_dataset"):
        load_suite_data("strcvit", data_root=tmp_path)
    with pytest.raises(DataError, match="data root .* does not exist"):
        load_suite_data("coin", data_root=tmp_path / "nowhere")


def test_bad_record_in_a_real_file_is_reported_with_its_file(tmp_path):
    write_fixture(tmp_path, "ucit")
    path = tmp_path / load_suite("ucit").task("IconQA").real["train"]
    recs = json.loads(path.read_text())
    recs[1]["image"] = "iconqa/missing.jpg"
    path.write_text(json.dumps(recs))
    with pytest.raises(DataError) as exc:
        load_suite_data("ucit", data_root=tmp_path)
    msg = str(exc.value)
    assert str(path) in msg and "record 1" in msg and "'IconQA-1'" in msg and "missing.jpg" in msg and "Fix:" in msg
