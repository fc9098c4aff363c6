"""Every data-file problem raises a DataError naming the file, the record (index and id) and the fix."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from cvitkit.data import RecordDataset, load_suite, read_records, validate_eval_records, validate_train_records
from cvitkit.data.suites import TaskSpec
from cvitkit.errors import ConfigError, DataError


def train_rec(i, image="img.png", question="<image>\nWhat colour?", answer="red", **extra):
    rec = {"id": f"s{i}", "conversations": [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]}
    if image:
        rec["image"] = image
    return {**rec, **extra}


def eval_rec(i, image="img.png", text="<image>\nWhat colour?", answer="red", **extra):
    rec = {"question_id": f"q{i}", "text": text, "answer": answer}
    if image:
        rec["image"] = image
    return {**rec, **extra}


@pytest.fixture
def folder(tmp_path):
    Image.new("RGB", (8, 8), "red").save(tmp_path / "img.png")
    (tmp_path / "broken.png").write_bytes(b"not a png at all")
    return tmp_path


def write(folder, name, records):
    path = folder / name
    path.write_text(json.dumps(records))
    return path


def check_train(folder, records, name="train.json", **kw):
    path = write(folder, name, records)
    return validate_train_records(read_records(path), path, folder, **kw)


def check_eval(folder, records, name="test.json", **kw):
    path = write(folder, name, records)
    return validate_eval_records(read_records(path), path, folder, **kw)


def assert_message(exc, path, index, rid, *words):
    msg = str(exc.value)
    assert str(path) in msg, msg
    assert f"record {index}" in msg and repr(rid) in msg, msg
    assert "Fix:" in msg, msg
    for w in words:
        assert w in msg, msg


def test_valid_files_pass_and_jsonl_is_accepted(folder):
    assert len(check_train(folder, [train_rec(0), train_rec(1, image=None, question="Say hi.", answer="hi")])) == 2
    path = folder / "test.jsonl"
    path.write_text("\n".join(json.dumps(eval_rec(i, answer=["a", "b"])) for i in range(3)) + "\n")
    assert len(validate_eval_records(read_records(path), path, folder)) == 3


def test_malformed_json_names_file_line_and_fix(folder):
    path = folder / "train.json"
    path.write_text('[\n {"id": "a",\n  "conversations": [}\n]')
    with pytest.raises(DataError) as exc:
        read_records(path)
    assert str(path) in str(exc.value) and "line 3" in str(exc.value) and "Fix:" in str(exc.value)


def test_malformed_jsonl_line_names_line_and_record(folder):
    path = folder / "test.jsonl"
    path.write_text(json.dumps(eval_rec(0)) + "\n" + '{"question_id": "q1", "text": \n')
    with pytest.raises(DataError) as exc:
        read_records(path)
    msg = str(exc.value)
    assert str(path) in msg and "line 2" in msg and "record 1" in msg and "Fix:" in msg


def test_missing_key(folder):
    bad = train_rec(1)
    del bad["conversations"]
    with pytest.raises(DataError) as exc:
        check_train(folder, [train_rec(0), bad])
    assert_message(exc, folder / "train.json", 1, "s1", "missing key 'conversations'")
    bad = eval_rec(2)
    del bad["answer"]
    with pytest.raises(DataError) as exc:
        check_eval(folder, [eval_rec(0), eval_rec(1), bad])
    assert_message(exc, folder / "test.json", 2, "q2", "missing key 'answer'", "annotation file")


def test_missing_and_unreadable_image(folder):
    with pytest.raises(DataError) as exc:
        check_train(folder, [train_rec(0), train_rec(1, image="nope/missing.png")])
    assert_message(exc, folder / "train.json", 1, "s1", "missing.png", "not found")
    with pytest.raises(DataError) as exc:
        check_eval(folder, [eval_rec(0, image="broken.png")], check_images="open")
    assert_message(exc, folder / "test.json", 0, "q0", "broken.png", "unreadable")
    # the same problems met at training time, through the Dataset
    ds = RecordDataset([train_rec(0), train_rec(1, image="broken.png"), train_rec(2, image="gone.png")], folder,
                       source="chunk_007.json")
    assert ds[0]["pil_image"].mode == "RGB"
    with pytest.raises(DataError) as exc:
        ds[1]
    assert_message(exc, "chunk_007.json", 1, "s1", "broken.png", "corrupt")
    with pytest.raises(DataError) as exc:
        ds[2]
    assert_message(exc, "chunk_007.json", 2, "s2", "gone.png", "not found")


def test_wrong_number_of_image_tokens(folder):
    with pytest.raises(DataError) as exc:
        check_train(folder, [train_rec(0, question="<image>\n<image>\nWhat?")])
    assert_message(exc, folder / "train.json", 0, "s0", "2 <image> tokens", "exactly 1 <image>")
    with pytest.raises(DataError) as exc:
        check_train(folder, [train_rec(0), train_rec(1, question="What colour?")])
    assert_message(exc, folder / "train.json", 1, "s1", "0 <image> tokens")
    with pytest.raises(DataError) as exc:
        check_train(folder, [train_rec(0, image=None)])
    assert_message(exc, folder / "train.json", 0, "s0", "has no 'image'")
    with pytest.raises(DataError) as exc:
        check_eval(folder, [eval_rec(0, text="<image> <image> q")])
    assert_message(exc, folder / "test.json", 0, "q0", "2 <image> tokens")


def test_empty_answer(folder):
    with pytest.raises(DataError) as exc:
        check_train(folder, [train_rec(0), train_rec(1, answer="  ")])
    assert_message(exc, folder / "train.json", 1, "s1", "empty answer")
    for empty in ("", [], ["ok", ""]):
        with pytest.raises(DataError) as exc:
            check_eval(folder, [eval_rec(0, answer=empty)])
        assert_message(exc, folder / "test.json", 0, "q0", "empty answer")


def test_duplicate_id(folder):
    with pytest.raises(DataError) as exc:
        check_train(folder, [train_rec(0), train_rec(1), train_rec(0)])
    assert_message(exc, folder / "train.json", 2, "s0", "duplicate id", "record 0", "unique")
    with pytest.raises(DataError) as exc:
        check_eval(folder, [eval_rec(0), {**eval_rec(1), "question_id": 7}, {**eval_rec(2), "question_id": "7"}])
    assert_message(exc, folder / "test.json", 2, "7", "duplicate question_id")


def test_unknown_task_name(folder):
    with pytest.raises(DataError) as exc:
        check_train(folder, [train_rec(0, task="GQA"), train_rec(1, task="GQAA")], known_tasks=["GQA", "VQAv2"])
    assert_message(exc, folder / "train.json", 1, "s1", "unknown task name 'GQAA'", "GQA, VQAv2")
    with pytest.raises(ConfigError, match="no task 'Textvqa'.*TextVQA"):
        load_suite("coin").task("Textvqa")
    with pytest.raises(ConfigError, match="unknown suite 'cion'.*coin"):
        load_suite("cion")


def test_bad_turn_structure(folder):
    rec = train_rec(0)
    rec["conversations"][1]["from"] = "human"
    with pytest.raises(DataError) as exc:
        check_train(folder, [rec])
    assert_message(exc, folder / "train.json", 0, "s0", "expected 'gpt'", "alternate")


def test_suite_yaml_errors_are_config_errors(tmp_path, monkeypatch):
    from cvitkit.data import suites

    task = "name: A, family: vqa, domain: natural"
    (tmp_path / "bad.yaml").write_text(f"name: bad\ntasks:\n  - {{{task}, scorer: exact_match, promt_suffix: x}}\n")
    (tmp_path / "worse.yaml").write_text(f"name: worse\ntasks:\n  - {{{task}, scorer: f1}}\n")
    monkeypatch.setattr(suites, "SUITE_DIR", tmp_path)
    with pytest.raises(ConfigError, match="unknown key 'promt_suffix'.*Did you mean 'prompt_suffix'"):
        suites.load_suite("bad")
    with pytest.raises(ConfigError, match="unknown scorer 'f1'"):
        suites.load_suite("worse")
    with pytest.raises(ConfigError, match="unknown family"):
        TaskSpec(name="A", family="riddle", domain="natural", scorer="exact_match")
    with pytest.raises(ConfigError, match="unknown option"):
        TaskSpec(name="A", family="vqa", domain="natural", scorer="exact_match", generator={"test": {"nope": 1}})
