"""Suites keep the papers' task names, orders and scorers; building and loading round-trip."""

from __future__ import annotations

import json

import pytest

from cvitkit.data import (
    SCORERS,
    DataConfig,
    available_suites,
    build_suite,
    corpus,
    is_built,
    load_suite,
    load_suite_data,
)
from cvitkit.data.build import MARKER
from cvitkit.errors import ConfigError, DataError

ORDERS = {
    "coin": ["ScienceQA", "TextVQA", "ImageNet", "GQA", "VizWiz", "Grounding", "VQAv2", "OCR-VQA"],
    "mllmcl_dcl": ["RS", "Med", "AD", "Sci", "Fin"],
    "mllmcl_acl": ["OCR", "Math", "VP", "GUI"],
    "strcvit": ["AD", "ChartQA", "Fin", "GQA", "Grounding", "ImageNet", "OCRVQA", "Places365", "RS", "TextCaps",
                "VQAv2"],
    "ucit": ["ImageNet-R", "ArxivQA", "VizWiz-Cap", "IconQA", "CLEVR", "Flickr30k"],
    "trigap": ["PMCVQA", "DocVQA", "ChartQA", "IconQA", "InfographicVQA", "ArxivQA", "Roadside", "ChemVQA",
               "FloodNetVQA", "CLEVR"],
}


def test_shipped_suites_and_orders():
    assert set(available_suites()) == {*ORDERS, "pretrain", "vision_pretrain"}  # the last two build the base model
    for name, order in ORDERS.items():
        suite = load_suite(name)
        assert suite.task_names == order
        assert suite.protocol == ("stream" if name == "strcvit" else "task_incremental")
        for t in suite.tasks:
            assert t.scorer in SCORERS and t.description
            if name != "pretrain":
                assert t.real.get("test") and t.real.get("image_root"), t.name


def test_letters_scorers_and_stream_spec():
    dcl = {t.name: t.letter for t in load_suite("mllmcl_dcl").tasks}
    assert dcl == {"Fin": "A", "Sci": "B", "Med": "C", "AD": "D", "RS": "E"}
    acl = {t.name: t.letter for t in load_suite("mllmcl_acl").tasks}
    assert acl == {"OCR": "A", "VP": "B", "Math": "C", "GUI": "D"}
    coin = {t.name: t.scorer for t in load_suite("coin").tasks}
    assert coin["TextVQA"] == "vqa_soft" and coin["VQAv2"] == "vqa_exact"
    assert coin["ImageNet"] == "bidirectional_substring"
    assert coin["ScienceQA"] == "option_letter" and coin["Grounding"] == "iou"
    trigap = {t.name: t for t in load_suite("trigap").tasks}
    assert trigap["DocVQA"].scorer == "anls" and trigap["DocVQA"].scorer_params == {"threshold": 0.0}
    assert trigap["ChartQA"].scorer == "exact_match"
    strcvit = load_suite("strcvit")
    assert strcvit.task("ChartQA").scorer == "relaxed_accuracy" and strcvit.task("TextCaps").scorer == "cider"
    assert strcvit.stream.lengths == [15, 20, 25]
    assert sorted(strcvit.stream.ap_tasks) == sorted(
        ["AD", "Fin", "RS", "ImageNet", "VQAv2", "Places365", "TextCaps", "OCRVQA", "Grounding"])
    assert {t.scorer for t in load_suite("ucit").tasks} == {"exact_match", "caption_avg"}


def test_profiles_carry_a_data_section():
    from cvitkit.profiles import load_profile

    smoke, mini = load_profile("smoke").data, load_profile("mini").data
    assert 10 <= smoke.train_per_task <= 60 and smoke.test_per_task < smoke.train_per_task
    assert 500 <= mini.train_per_task <= 3000 and mini.test_per_task >= 50
    sized = DataConfig(suite_sizes={"pretrain": {"train_per_task": 4000}})
    assert sized.sizes_for("pretrain")["train_per_task"] == 4000 and sized.sizes_for("coin")["train_per_task"] == 24
    assert smoke.image_size == 64 and smoke.stream_lengths == [15, 20, 25]
    with pytest.raises(ConfigError, match="suite_sizes.coin: unknown key 'train'"):
        DataConfig(suite_sizes={"coin": {"train": 3}})


def test_corpus_is_deterministic_and_covers_answers():
    c = corpus()
    assert c == corpus() and len(c) > 50
    text = "\n".join(c)
    for needle in ("Answer with the option's letter", "unanswerable", "How many", "Click on", "bounding box",
                   "stock price", "oxygen", "beach"):
        assert needle in text
    assert len(corpus(["coin"])) < len(c)


def test_build_load_round_trip_and_skip(tmp_path):
    cfg = DataConfig(train_per_task=5, test_per_task=3)
    folder = build_suite("coin", cfg, tmp_path, progress=False)
    assert (folder / MARKER).is_file() and is_built("coin", cfg, tmp_path)
    assert (folder / "OCR-VQA" / "train.json").is_file() and (folder / "images" / "ScienceQA").is_dir()
    marker_mtime = (folder / MARKER).stat().st_mtime_ns
    build_suite("coin", cfg, tmp_path, progress=False)  # finished with the same config: skipped
    assert (folder / MARKER).stat().st_mtime_ns == marker_mtime
    data = load_suite_data("coin", tmp_path, check_images="open")
    assert data.sizes()["GQA"] == {"train": 5, "test": 3}
    rec = data.test["TextVQA"][0]
    assert rec["text"].startswith("<image>\n") and rec["text"].endswith("single word or phrase.")
    assert isinstance(rec["answer"], list) and len(rec["answer"]) == 10 and rec["task"] == "TextVQA"
    assert data.train["GQA"][0]["task"] == "GQA" and (data.image_root / data.train["GQA"][0]["image"]).is_file()
    # a new config rebuilds (no stale files: 2 train samples now)
    build_suite("coin", DataConfig(train_per_task=2, test_per_task=3), tmp_path, progress=False)
    assert len(json.loads((folder / "GQA" / "train.json").read_text())) == 2
    assert not (folder / "images" / "GQA" / "train_00004.png").exists()


def test_loading_an_unbuilt_suite_or_foreign_folder_fails_clearly(tmp_path):
    with pytest.raises(DataError, match="not built.*build_suite"):
        load_suite_data("ucit", tmp_path)
    (tmp_path / "ucit").mkdir()
    (tmp_path / "ucit" / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="not a finished cvitkit build"):
        build_suite("ucit", DataConfig(), tmp_path, progress=False)
    with pytest.raises(ConfigError, match="no task 'Nope'"):
        load_suite_data("coin", tmp_path, tasks=["Nope"])
