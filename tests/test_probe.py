"""The single-task learnability probe: one fresh adapter per (task, epochs), resumable, merged tables."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from cvitkit.errors import ConfigError
from cvitkit.probe import (STEPS_FIRST_TOKENS, _probe_dir, model_label, probe_suite, refresh_references,
                           with_position_term, with_tower_term)
from cvitkit.provenance import work_dir

SUITE = "mllmcl_dcl"


def test_probe_trains_each_task_alone_scores_it_and_reads_finished_probes_back(micro_smoke_profile):
    profile = micro_smoke_profile(batch_size=2)
    table = probe_suite(profile, SUITE, ["Med"], [1.0, 2.0], log=lambda *_: None)

    assert list(table["task"]) == ["Med", "Med"] and list(table["epochs"]) == [1.0, 2.0]
    # 6 training samples at batch 2: 3 optimizer steps per epoch
    assert list(table["steps"]) == [3, 6]
    assert (table["chance"] <= table["best constant"]).all()
    bar = table[["best constant", "question prior", "question-type prior"]].max(axis=1)
    assert (table["score - bar"] == (table["score"] - bar).round(1)).all()
    assert table["score"].between(0, 100).all()
    probes = work_dir(profile.name) / "probes" / SUITE / "micro"
    assert sorted(p.name for p in probes.iterdir()) == ["Med__lora_ft__e1", "Med__lora_ft__e2"]

    # a second call with another task keeps the first rows and reads the finished probe back unchanged
    again = probe_suite(profile, SUITE, ["RS", "Med"], [1.0], log=lambda *_: None)
    med = again.set_index("task").loc["Med"]
    assert med["score"] == table.iloc[0]["score"] and med["train seconds"] == table.iloc[0]["train seconds"]
    saved = pd.read_csv(profile.results_dir / "tables" / f"{SUITE}_probe.csv")
    assert list(zip(saved["task"], saved["epochs"])) == [("RS", 1.0), ("Med", 1.0), ("Med", 2.0)]
    assert (profile.results_dir / "tables" / f"{SUITE}_probe.md").exists()

    # per question type: every test question of Med has a type, so the types' weighted mean is the score
    types = pd.read_csv(profile.results_dir / "tables" / f"{SUITE}_probe_types.csv")
    for (task, epochs), group in types.groupby(["task", "epochs"]):
        assert task in ("RS", "Med") and set(group["question type"]) <= {"colour", "count", "kind", "presence"}
        score = saved.set_index(["task", "epochs"]).loc[(task, epochs), "score"]
        mean = (group["score"] * group["questions"]).sum() / group["questions"].sum()
        assert group["questions"].sum() == 2 and mean == pytest.approx(score, abs=0.1)
    assert len(types.groupby(["task", "epochs"])) == 3


@pytest.mark.parametrize("suite, tasks, epochs, message", [
    ("mllmcl_dcl", ["Nope"], [1.0], "has no task"),
    ("mllmcl_dcl", ["RS"], [0.0], "epochs must be positive"),
    ("strcvit", None, [1.0], "is a stream"),
])
def test_probe_rejects_bad_requests_with_the_fix(micro_smoke_profile, suite, tasks, epochs, message):
    with pytest.raises(ConfigError, match=message):
        probe_suite(micro_smoke_profile(), suite, tasks, epochs, log=lambda *_: None)


def test_probe_with_more_training_data_builds_its_own_set_and_keeps_the_profiles(micro_smoke_profile):
    profile = micro_smoke_profile(batch_size=2)
    table = probe_suite(profile, SUITE, ["Med"], [1.0], log=lambda *_: None, train_per_task=10)

    # 10 training samples at batch 2: 5 optimizer steps (the profile's 6 samples would give 3)
    assert list(table["train samples"]) == [10] and list(table["steps"]) == [5]
    probes = work_dir(profile.name) / "probes"
    assert (probes / SUITE / "micro" / "Med__lora_ft__e1__n10").is_dir()
    assert (probes / "data_n10" / SUITE).is_dir()
    assert not (work_dir(profile.name) / "data" / SUITE).exists(), "the profile's own data must not be rebuilt"

    # the same probe at the profile's size is a separate row
    probe_suite(profile, SUITE, ["Med"], [1.0], log=lambda *_: None)
    saved = pd.read_csv(profile.results_dir / "tables" / f"{SUITE}_probe.csv")
    assert list(zip(saved["train samples"], saved["steps"])) == [(6, 3), (10, 5)]


def test_refreshing_references_recomputes_them_per_training_set_and_keeps_the_scores(micro_smoke_profile):
    from cvitkit.eval.chance import REFERENCE_COLUMNS

    profile = micro_smoke_profile(batch_size=3)
    probe_suite(profile, SUITE, ["AD", "Med"], [1.0], log=lambda *_: None)
    probe_suite(profile, SUITE, ["AD"], [1.0], log=lambda *_: None, train_per_task=12)
    path = profile.results_dir / "tables" / f"{SUITE}_probe.csv"
    fresh = pd.read_csv(path)
    assert sorted(fresh["train samples"]) == [6, 6, 12]
    # a table from before the question-type prior: no such column, and score - bar against an old bar
    fresh.drop(columns="question-type prior").assign(**{"score - bar": fresh["score"] - 99}).to_csv(path, index=False)

    refreshed = refresh_references(profile, SUITE, log=lambda *_: None)
    assert list(refreshed.columns) == list(fresh.columns)
    # the probes' own references, each from its own training set; the distance from the rounded score
    pd.testing.assert_frame_equal(refreshed, fresh, check_exact=False, atol=0.051)
    calls = json.loads(path.with_suffix(".json").read_text())["calls"]
    assert calls[-1]["refreshed_references"] == list(REFERENCE_COLUMNS) and len(calls) == 3
    with pytest.raises(ConfigError, match="has no probe rows to refresh"):
        refresh_references(profile, "coin", log=lambda *_: None)


def test_probe_rejects_a_non_positive_training_size(micro_smoke_profile):
    with pytest.raises(ConfigError, match="train_per_task must be a positive"):
        probe_suite(micro_smoke_profile(), SUITE, ["Med"], [1.0], log=lambda *_: None, train_per_task=0)


def test_a_position_term_base_is_a_model_of_its_own_in_folders_and_tables():
    from cvitkit.profiles import load_profile

    mini = load_profile("mini")
    assert mini.base.vision_position_weight == 0 and model_label(mini) == "tiny-3m"
    placed = with_position_term(mini, 1.0)
    assert placed.base.vision_position_weight == 1.0 and model_label(placed) == "tiny-3m + position term 1"
    plain_dir = _probe_dir(mini, "coin", "Grounding", "lora_ft", 3.0, None)
    assert plain_dir.parent.name == "tiny-3m"
    assert _probe_dir(placed, "coin", "Grounding", "lora_ft", 3.0, None).parent.name == "tiny-3m__position1"
    with pytest.raises(ConfigError, match="0 or more"):
        with_position_term(mini, -1.0)
    # a weight given as a whole number reads the base model that the CLI's 1.0 pretrained, not a new one
    from cvitkit.base_model import base_key

    assert base_key(with_position_term(mini, 1), ["x"]) == base_key(placed, ["x"])
    # the object term too, alone or with the position term, each a base model and folder of its own
    kinds = with_tower_term(mini, "object", 1)
    both = with_tower_term(placed, "object", 0.5)
    assert model_label(kinds) == "tiny-3m + object term 1"
    assert model_label(both) == "tiny-3m + position term 1 + object term 0.5"
    assert _probe_dir(both, "coin", "GQA", "lora_ft", 3.0, None).parent.name == "tiny-3m__position1__object0.5"
    assert len({base_key(p, ["x"]) for p in (mini, placed, kinds, both)}) == 4
    with pytest.raises(ConfigError, match="object term's weight must be 0 or more"):
        with_tower_term(mini, "object", -1.0)
    # the command lines' options set the same terms (an option left out leaves its term as it is)
    import argparse

    from cvitkit.probe import add_tower_options, with_tower_options

    parser = argparse.ArgumentParser()
    add_tower_options(parser)
    assert with_tower_options(mini, parser.parse_args([])) == mini
    options = ["--vision-position-weight", "1", "--vision-object-weight", "0.5"]
    from_cli = with_tower_options(mini, parser.parse_args(options))
    assert from_cli == both


def test_the_position_term_needs_a_profile_that_pretrains_a_base(micro_smoke_profile):
    with pytest.raises(ConfigError, match="Fix: use the mini profile"):
        with_position_term(micro_smoke_profile(), 1.0)


def test_a_domain_caption_base_is_a_model_of_its_own_in_folders_tables_and_the_cli(micro_smoke_profile):
    import argparse

    from cvitkit.base_model import base_key
    from cvitkit.probe import add_tower_options, with_domain_captions, with_tower_options
    from cvitkit.profiles import load_profile

    mini = load_profile("mini")
    captioned = with_domain_captions(mini)
    assert captioned.base.caption_every_domain and not mini.base.caption_every_domain
    assert model_label(captioned) == "tiny-3m + domain captions"
    assert model_label(with_tower_term(captioned, "object", 1)) == "tiny-3m + object term 1 + domain captions"
    assert _probe_dir(captioned, "mllmcl_dcl", "Med", "lora_ft", 10.0, None).parent.name == "tiny-3m__captions"
    assert base_key(captioned, ["x"]) != base_key(mini, ["x"])
    parser = argparse.ArgumentParser()
    add_tower_options(parser)
    parser.add_argument("--caption-every-domain", action="store_true")
    assert with_tower_options(mini, parser.parse_args(["--caption-every-domain"])) == captioned
    assert with_tower_options(mini, parser.parse_args([])) == mini
    with pytest.raises(ConfigError, match="--caption-every-domain.*Fix: use the mini profile"):
        with_domain_captions(micro_smoke_profile())


def test_a_longer_stage_zero_is_a_base_model_of_its_own(micro_smoke_profile):
    import argparse

    from cvitkit.base_model import base_key
    from cvitkit.probe import add_tower_options, with_tower_options, with_vision_epochs
    from cvitkit.profiles import load_profile

    mini = load_profile("mini")
    longer = with_vision_epochs(mini, 20)
    assert longer.base.vision_epochs == 20.0 and base_key(longer, ["x"]) != base_key(mini, ["x"])
    assert model_label(with_vision_epochs(mini, mini.base.vision_epochs)) == "tiny-3m"
    both = with_vision_epochs(with_tower_term(mini, "object", 1.0), 20)
    assert model_label(both) == "tiny-3m + object term 1 + stage 0 20 epochs"
    assert _probe_dir(both, "coin", "GQA", "lora_ft", 10.0, None).parent.name == "tiny-3m__object1__stage0e20"
    parser = argparse.ArgumentParser()
    add_tower_options(parser)
    assert with_tower_options(mini, parser.parse_args(["--vision-object-weight", "1", "--vision-epochs", "20"])) == both
    with pytest.raises(ConfigError, match="positive number of passes"):
        with_vision_epochs(mini, 0)
    with pytest.raises(ConfigError, match="--vision-epochs.*Fix: use the mini profile"):
        with_vision_epochs(micro_smoke_profile(), 20)


def _replies_of_probe(profile, row, task: str, form: str, scorer: str) -> tuple[list[dict], dict]:
    """Check a probe row and folder of answer form ``form``; its saved replies and the task's test records."""
    from cvitkit.data import load_profile_suite_data, load_suite

    assert row["answer form"] == form and row["scorer"] == scorer   # the task's own, for the bar
    assert 0 <= row["reading right"] <= 100 and 0 <= row["answer follows its reading"] <= 100
    folder = _probe_dir(profile, SUITE, task, "lora_ft", 1.0, None, form)
    assert folder.name == f"{task}__lora_ft__e1__{form}"
    config = json.loads((folder / "config.json").read_text())
    assert config["answer_form"] == form and config["train"]["max_new_tokens"] > 5
    replies = [json.loads(line) for line in (folder / "stages" / "000" / "predictions" / f"{task}.jsonl").open()]
    test = {r["question_id"]: r for r in load_profile_suite_data(profile, load_suite(SUITE)).test[task]}
    return replies, test


def test_value_first_probe_trains_on_value_letter_replies_in_a_folder_and_row_of_its_own(micro_smoke_profile):
    from cvitkit.data.option_answers import split_reply

    profile = micro_smoke_profile(batch_size=2)
    probe_suite(profile, SUITE, ["Sci"], [1.0], log=lambda *_: None)
    table = probe_suite(profile, SUITE, ["Sci"], [1.0], log=lambda *_: None, answer_form="value_letter")

    row = table.iloc[0]
    replies, test = _replies_of_probe(profile, row, "Sci", "value_letter", "exact_match")
    # the value-first probe is scored on the letter it parses from each reply
    for reply in replies:
        letter = split_reply(reply["text"])[1]
        assert reply["score"] == float(letter is not None and letter == test[reply["question_id"]]["answer"])
    saved = pd.read_csv(profile.results_dir / "tables" / f"{SUITE}_probe.csv")
    assert list(saved["answer form"]) == ["letter", "value_letter"]
    assert saved["reading right"].isna().tolist() == [True, False]

    # a later letter-probe call keeps the value-first row's numbers
    probe_suite(profile, SUITE, ["Med"], [1.0], log=lambda *_: None)
    again = pd.read_csv(profile.results_dir / "tables" / f"{SUITE}_probe.csv").set_index(["task", "answer form"])
    assert again.loc[("Sci", "value_letter"), "reading right"] == row["reading right"]
    assert again.loc[("Sci", "value_letter"), "answer follows its reading"] == row["answer follows its reading"]


def test_value_first_answers_need_a_multiple_choice_task(micro_smoke_profile):
    from cvitkit.errors import DataError

    with pytest.raises(DataError, match="not one of the prompt's option letters"):
        probe_suite(micro_smoke_profile(batch_size=2), SUITE, ["RS"], [1.0], log=lambda *_: None,
                    answer_form="value_letter")
    with pytest.raises(ConfigError, match="unknown answer form"):
        probe_suite(micro_smoke_profile(), SUITE, ["Sci"], [1.0], log=lambda *_: None, answer_form="value")


def test_worked_probe_trains_on_worked_replies_and_scores_their_final_answer(micro_smoke_profile):
    from cvitkit.eval.scorers import score

    profile = micro_smoke_profile(batch_size=2)
    table = probe_suite(profile, SUITE, ["Fin"], [1.0], log=lambda *_: None, answer_form="worked")

    replies, test = _replies_of_probe(profile, table.iloc[0], "Fin", "worked", "exact_match_nospace")
    # each reply is scored on its last word only, by the task's own rule
    for reply in replies:
        last = reply["text"].split()[-1] if reply["text"].split() else ""
        expected = score("exact_match_nospace", [last], [test[reply["question_id"]]["answer"]]).per_sample[0]
        assert reply["score"] == (expected if last else 0.0)


def test_scene_first_probe_of_a_relation_task_scores_the_word_after_the_last_colon(micro_smoke_profile):
    from cvitkit.eval.scorers import score

    profile = micro_smoke_profile(batch_size=2)
    table = probe_suite(profile, SUITE, ["AD"], [1.0], log=lambda *_: None, answer_form="scene")

    replies, test = _replies_of_probe(profile, table.iloc[0], "AD", "scene", "bounded_substring")
    for reply in replies:
        tail = reply["text"].rpartition(":")[2].strip() if ":" in reply["text"] else ""
        expected = score("bounded_substring", [tail], [test[reply["question_id"]]["answer"]]).per_sample[0]
        assert reply["score"] == (expected if tail else 0.0)
    # the generation budget was sized to the training replies: scenes, longer than any short worked reply
    folder = _probe_dir(profile, SUITE, "AD", "lora_ft", 1.0, None, "scene")
    assert json.loads((folder / "config.json").read_text())["train"]["max_new_tokens"] > STEPS_FIRST_TOKENS

def test_worked_answers_need_a_math_chart_trend_or_grounding_task(micro_smoke_profile):
    with pytest.raises(ConfigError, match="no worked reply.*value_letter"):
        probe_suite(micro_smoke_profile(batch_size=2), SUITE, ["Sci"], [1.0], log=lambda *_: None,
                    answer_form="worked")


def test_another_training_seed_is_a_probe_of_its_own_and_the_profiles_seed_is_the_default(micro_smoke_profile):
    profile = micro_smoke_profile(batch_size=2)
    first = probe_suite(profile, SUITE, ["Med"], [1.0], log=lambda *_: None)
    probe_suite(profile, SUITE, ["Med"], [1.0], log=lambda *_: None, seed=3)
    # the profile's own seed, named, is the probe made without one: read back, not retrained
    same = probe_suite(profile, SUITE, ["Med"], [1.0], log=lambda *_: None, seed=profile.train.seed)
    assert same.iloc[0]["train seconds"] == first.iloc[0]["train seconds"]

    probes = work_dir(profile.name) / "probes" / SUITE / "micro"
    assert sorted(p.name for p in probes.iterdir()) == ["Med__lora_ft__e1", "Med__lora_ft__e1__seed3"]
    config = json.loads((probes / "Med__lora_ft__e1__seed3" / "config.json").read_text())
    assert config["train"]["seed"] == 3
    saved = pd.read_csv(profile.results_dir / "tables" / f"{SUITE}_probe.csv")
    assert list(saved["seed"]) == [profile.train.seed, 3]
    calls = json.loads((profile.results_dir / "tables" / f"{SUITE}_probe.json").read_text())["calls"]
    assert [c["seed"] for c in calls] == [profile.train.seed, 3, profile.train.seed]


def test_a_blind_probe_shows_every_record_of_the_task_one_grey_picture(micro_smoke_profile):
    from PIL import Image

    from cvitkit.data import load_profile_suite_data
    from cvitkit.probe import BLANK_GREY, _blind

    profile = micro_smoke_profile(batch_size=2)
    probe_suite(profile, SUITE, ["Med"], [1.0], log=lambda *_: None)
    blind = probe_suite(profile, SUITE, ["Med"], [1.0], log=lambda *_: None, blind=True)
    assert list(blind["images"]) == ["blank"]
    saved = pd.read_csv(profile.results_dir / "tables" / f"{SUITE}_probe.csv")
    assert list(saved["images"]) == ["shown", "blank"]           # a row of its own beside the probe with pictures
    probes = work_dir(profile.name) / "probes" / SUITE / "micro"
    assert sorted(p.name for p in probes.iterdir()) == ["Med__lora_ft__e1", "Med__lora_ft__e1__blind"]
    assert json.loads((probes / "Med__lora_ft__e1__blind" / "config.json").read_text())["blind"] is True
    assert "blind" not in json.loads((probes / "Med__lora_ft__e1" / "config.json").read_text())
    calls = json.loads((profile.results_dir / "tables" / f"{SUITE}_probe.json").read_text())["calls"]
    assert [c["blind"] for c in calls] == [False, True]

    # what it trained and was tested on: one uniform grey picture of the profile's size for every record of
    # the task, the other tasks' records untouched
    data = load_profile_suite_data(profile, SUITE)
    blanked = _blind(profile, data, "Med")
    images = {r["image"] for r in blanked.train["Med"] + blanked.test["Med"]}
    assert len(images) == 1 and len(blanked.train["Med"]) == len(data.train["Med"])
    with Image.open(images.pop()) as grey:
        size = profile.data.image_size
        assert grey.size == (size, size) and grey.convert("RGB").getcolors() == [(size * size, BLANK_GREY)]
    assert blanked.train["RS"] == data.train["RS"] and blanked.test["RS"] == data.test["RS"]


@pytest.mark.parametrize("seed", [-1, 1.5, True])
def test_probe_rejects_a_seed_that_is_not_a_whole_number(micro_smoke_profile, seed):
    with pytest.raises(ConfigError, match="training seed must be a whole number"):
        probe_suite(micro_smoke_profile(), SUITE, ["Med"], [1.0], log=lambda *_: None, seed=seed)


def test_scene_first_probe_lists_the_scene_and_scores_the_last_box(micro_smoke_profile):
    from cvitkit.data import load_profile_suite_data, load_suite
    from cvitkit.eval.scorers import score

    profile = micro_smoke_profile(batch_size=2)
    table = probe_suite(profile, "coin", ["Grounding"], [1.0], log=lambda *_: None, answer_form="scene")

    row = table.iloc[0]
    assert row["answer form"] == "scene" and row["scorer"] == "iou"
    assert 0 <= row["reading right"] <= 100 and 0 <= row["answer follows its reading"] <= 100
    folder = _probe_dir(profile, "coin", "Grounding", "lora_ft", 1.0, None, "scene")
    config = json.loads((folder / "config.json").read_text())
    # the budget fits the longest listed scene, far more than a box alone needs
    assert config["answer_form"] == "scene" and config["train"]["max_new_tokens"] > 32
    test = {r["question_id"]: r for r in load_profile_suite_data(profile, load_suite("coin")).test["Grounding"]}
    for reply in (json.loads(line) for line in (folder / "stages" / "000" / "predictions" / "Grounding.jsonl").open()):
        box = reply["text"][reply["text"].rfind("["):] if "[" in reply["text"] else ""
        expected = score("iou", [box], [test[reply["question_id"]]["answer"]]).per_sample[0] if box else 0.0
        assert reply["score"] == expected
    # where each final box landed: on the named object exactly as often as the task's score says
    targets = pd.read_csv(profile.results_dir / "tables" / "coin_probe_targets.csv").iloc[0]
    assert targets["task"] == "Grounding" and targets["answer form"] == "scene"
    assert targets["on the named object"] == row["score"]
    assert targets["on the named object"] <= targets["on an object"] <= 100
    assert 25 <= targets["a random object"] <= 50   # two to four objects a picture


def test_scene_first_replies_need_a_grounding_task(micro_smoke_profile):
    with pytest.raises(ConfigError, match="no scene-first reply.*Fix: use --answer-form scene on grounding, GUI, VQA"):
        probe_suite(micro_smoke_profile(batch_size=2), SUITE, ["Fin"], [1.0], log=lambda *_: None,
                    answer_form="scene")


def test_a_probe_that_trains_the_tower_is_a_model_of_its_own_and_changes_only_the_tower_it_trains(
        micro_smoke_profile):
    from safetensors.torch import load_file

    from cvitkit.data import corpus
    from cvitkit.runner import load_base

    profile = micro_smoke_profile(batch_size=2)
    frozen = probe_suite(profile, SUITE, ["Med"], [1.0], log=lambda *_: None)
    trained = probe_suite(profile, SUITE, ["Med"], [1.0], log=lambda *_: None, train_parts=["tower"])
    assert list(frozen["model"]) == ["micro"] and list(trained["model"]) == ["micro + tower trained"]
    assert model_label(profile, train_parts=["tower"]) == "micro + tower trained"
    assert model_label(profile, train_parts=["head", "tower"]) == "micro + tower trained + head trained"
    with pytest.raises(ConfigError, match="unknown part"):
        model_label(profile, train_parts=["embeddings"])
    saved = pd.read_csv(profile.results_dir / "tables" / f"{SUITE}_probe.csv")
    assert list(saved["model"]) == ["micro", "micro + tower trained"]
    calls = json.loads((profile.results_dir / "tables" / f"{SUITE}_probe.json").read_text())["calls"]
    assert [c["model"] for c in calls] == ["micro", "micro + tower trained"]

    run = _probe_dir(profile, SUITE, "Med", "lora_ft", 1.0, None, train_parts=["tower"])
    assert run.parent.name == "micro__tower" and json.loads((run / "config.json").read_text())["train_tower"] is True
    # the stage folder holds the tower the probe trained, and it moved away from the base model's
    stage = load_file(str(sorted((run / "stages").iterdir())[-1] / "adapter.safetensors"))
    base, _ = load_base(profile, corpus=corpus())
    tower = {k.removeprefix("base_model.model."): v for k, v in stage.items() if "vision_tower" in k}
    base_tower = {n: p.detach() for n, p in base.named_parameters() if "vision_tower" in n}
    assert set(tower) == set(base_tower)
    assert any(not torch.equal(v, base_tower[k]) for k, v in tower.items())
    frozen_run = _probe_dir(profile, SUITE, "Med", "lora_ft", 1.0, None)
    assert not any("vision_tower" in k for k in
                   load_file(str(sorted((frozen_run / "stages").iterdir())[-1] / "adapter.safetensors")))


def test_another_image_side_is_a_model_of_its_own_in_folders_tables_and_base_models():
    from cvitkit.base_model import base_key
    from cvitkit.probe import own_image_size
    from cvitkit.profiles import load_profile

    mini = load_profile("mini")
    assert own_image_size(mini, None) == (mini, None) and own_image_size(mini, 64) == (mini, None)
    large, side = own_image_size(mini, 128)
    assert side == 128 and large.data.image_size == 128 and large.data.seed == mini.data.seed
    assert model_label(large, image_size=side) == "tiny-3m + 128 px"
    assert model_label(large, train_parts=["tower"], image_size=side) == "tiny-3m + 128 px + tower trained"
    folder = _probe_dir(large, "mllmcl_dcl", "AD", "lora_ft", 10.0, None, image_size=side)
    assert folder.parent.name == "tiny-3m__128px"
    assert base_key(large, ["x"]) != base_key(mini, ["x"])  # pretrained again at that side
    for bad in (100, 4):
        with pytest.raises(ConfigError, match="multiple of the tiny-3m tower's 8-pixel patch"):
            own_image_size(mini, bad)


def test_another_image_side_needs_the_kits_pretrained_tiny_model(micro_smoke_profile):
    from cvitkit.probe import own_image_size

    # source tiny builds the preset at its own side and would shrink the pictures back
    with pytest.raises(ConfigError, match="Fix: use the mini profile"):
        own_image_size(micro_smoke_profile(), 48)


@pytest.mark.slow
def test_a_probe_at_another_image_side_draws_and_reads_pictures_of_that_side(micro_smoke_profile):
    from dataclasses import replace

    from PIL import Image

    from cvitkit.runner import base_model_dir

    profile = micro_smoke_profile(batch_size=2)
    base = replace(profile.base, train_per_task=4, test_per_task=2, epochs=1.0, batch_size=4, vision_suite="")
    profile = replace(profile, model=replace(profile.model, source="base"), base=base)
    table = probe_suite(profile, SUITE, ["Med"], [1.0], log=lambda *_: None, image_size=48)
    assert list(table["model"]) == ["micro + 48 px"] and list(table["image size"]) == [48]
    data = work_dir(profile.name) / "probes" / "data_48px" / SUITE
    with Image.open(next((data / "images" / "Med").iterdir())) as picture:
        assert picture.size == (48, 48)
    run = _probe_dir(profile, SUITE, "Med", "lora_ft", 1.0, None, image_size=48)
    assert run.parent.name == "micro__48px" and (run / "stages").is_dir()
    assert json.loads((run / "config.json").read_text())["data"]["image_size"] == 48
    sized = replace(profile, data=replace(profile.data, image_size=48))
    tower = json.loads((base_model_dir(sized) / "config.json").read_text())["vision_config"]
    assert tower["image_size"] == 48
    # the profile's own side is the probe without the option; its rows say so in the column
    plain = probe_suite(profile, SUITE, ["Med"], [1.0], log=lambda *_: None, image_size=32)
    assert list(plain["model"]) == ["micro"] and list(plain["image size"]) == [32]
    saved = pd.read_csv(profile.results_dir / "tables" / f"{SUITE}_probe.csv")
    assert sorted(zip(saved["model"], saved["image size"])) == [("micro", 32), ("micro + 48 px", 48)]


def test_a_probe_that_trains_the_head_saves_the_head_it_trained_and_resumes_with_it(micro_smoke_profile):
    from safetensors.torch import load_file

    profile = micro_smoke_profile(batch_size=2)
    first = probe_suite(profile, SUITE, ["Med"], [1.0], log=lambda *_: None, train_parts=["head"])
    assert list(first["model"]) == ["micro + head trained"]
    run = _probe_dir(profile, SUITE, "Med", "lora_ft", 1.0, None, train_parts=["head"])
    assert run.parent.name == "micro__head" and json.loads((run / "config.json").read_text())["train_head"] is True
    saved = load_file(str(sorted((run / "stages").iterdir())[-1] / "adapter.safetensors"))
    assert any("lm_head" in k for k in saved) and not any("vision_tower" in k for k in saved)
    # read back, not retrained: the saved head loads into a model set up the same way
    again = probe_suite(profile, SUITE, ["Med"], [1.0], log=lambda *_: None, train_parts=["head"])
    assert again.iloc[0]["train seconds"] == first.iloc[0]["train seconds"]
