"""The per-task 'what it takes' table: every setting tried, its distance to the bar, and which learned."""

import pandas as pd
import pytest

from cvitkit.report.what_it_takes import what_it_takes, write_what_it_takes


def _learnability() -> pd.DataFrame:
    return pd.DataFrame([
        {"task": "AD", "scorer": "bounded_substring", "best constant": 18.0, "question prior": 37.0,
         "LoRA-FT R_tt": 34.0, "LoRA-FT 3 epochs R_tt": 42.0},
        {"task": "Sci", "scorer": "exact_match", "best constant": 41.0, "question prior": 39.0,
         "LoRA-FT R_tt": 33.0, "LoRA-FT 3 epochs R_tt": 52.0},
        {"task": "GUI", "scorer": "point_in_box", "best constant": 20.0, "question prior": 16.0,
         "LoRA-FT R_tt": 0.0, "LoRA-FT 3 epochs R_tt": 17.0},
    ]).set_index("task")


def _probes() -> pd.DataFrame:
    return pd.DataFrame([
        # the 4,000-sample row has its own, higher bar (45): 41 is 4 under it although 41 > 37 + 0
        {"task": "AD", "model": "tiny-3m", "method": "lora_ft", "epochs": 1.0, "train samples": 4000,
         "score": 41.0, "score - bar": -4.0},
        {"task": "AD", "model": "tiny-3m", "method": "lora_ft", "epochs": 10.0, "train samples": 1000,
         "score": 47.0, "score - bar": 10.0},
        {"task": "Sci", "model": "tiny-20m", "method": "lora_ft", "epochs": 3.0, "train samples": 1000,
         "score": 32.0, "score - bar": -9.0},
    ])


def test_each_setting_is_judged_against_its_own_bar_and_the_learners_are_named():
    table = what_it_takes(_learnability(), _probes(), margin=10.0, default_samples=1000)
    ad = table.loc["AD"]
    assert ad["bar"] == 37.0 and ad["settings tried"] == 4
    assert ad["learned by"] == "alone, tiny-3m, 10 epochs"          # 42 - 37 = 5 in sequence: not enough
    assert (ad["best score"], ad["best - bar"], ad["best setting"]) == (47.0, 10.0, "alone, tiny-3m, 10 epochs")
    sci = table.loc["Sci"]
    assert sci["bar"] == 41.0 and sci["learned by"] == "in sequence, 3 epochs"    # 52 - 41 = 11
    assert table.loc["GUI", "learned by"] == "none" and table.loc["GUI", "best - bar"] == -3.0
    assert table.loc["GUI", "settings tried"] == 2


def test_probe_labels_name_samples_only_when_they_differ_from_the_profile():
    table = what_it_takes(_learnability(), _probes().iloc[[0]], margin=-100.0, default_samples=1000)
    assert "alone, tiny-3m, 1 epoch, 4,000 samples" in table.loc["AD", "learned by"].split("; ")
    assert table.loc["AD", "learned by"].startswith("in sequence, 1 epoch; in sequence, 3 epochs")


def test_without_probes_only_the_sequence_settings_count():
    table = what_it_takes(_learnability(), None)
    assert table["settings tried"].tolist() == [2, 2, 2]
    assert table.loc["Sci", "learned by"] == "in sequence, 3 epochs"


def test_write_needs_the_learnability_table_and_reads_the_probes_beside_it(tmp_path):
    assert write_what_it_takes(tmp_path, "mllmcl_dcl") is None
    assert not list(tmp_path.iterdir())
    _learnability().to_csv(tmp_path / "mllmcl_dcl_learnability.csv")
    _probes().to_csv(tmp_path / "mllmcl_dcl_probe.csv", index=False)
    table = write_what_it_takes(tmp_path, "mllmcl_dcl", default_samples=1000)
    assert table.loc["AD", "settings tried"] == 4
    saved = pd.read_csv(tmp_path / "mllmcl_dcl_what_it_takes.csv", index_col="task")
    assert saved.loc["AD", "learned by"] == "alone, tiny-3m, 10 epochs"
    assert "| AD " in (tmp_path / "mllmcl_dcl_what_it_takes.md").read_text()


@pytest.mark.parametrize("form, label", [("value_letter", "value-first replies"), ("worked", "worked replies")])
def test_probes_of_other_answer_forms_are_settings_of_their_own(form, label):
    probes = _probes().iloc[[0]].assign(**{"answer form": form})
    table = what_it_takes(_learnability(), probes, margin=-100.0, default_samples=1000)
    assert f"alone, tiny-3m, 1 epoch, 4,000 samples, {label}" in table.loc["AD", "learned by"].split("; ")


def test_a_setting_repeated_with_other_seeds_counts_once_at_its_mean():
    # seed 0 alone would count as learned (10 above the bar); with seed 1 the setting's mean is 7 above it
    repeat = _probes().iloc[[1]].assign(score=41.0, **{"score - bar": 4.0})
    probes = pd.concat([_probes(), repeat], ignore_index=True)
    table = what_it_takes(_learnability(), probes, margin=10.0, default_samples=1000)
    ad = table.loc["AD"]
    assert ad["settings tried"] == 4                                    # 2 in sequence + 2 probe settings
    assert ad["learned by"] == "none"
    assert ad["best setting"] == "alone, tiny-3m, 10 epochs (mean of 2 seeds: 47, 41)"
    assert (ad["best score"], ad["best - bar"]) == (44.0, 7.0)


def test_a_blind_probe_raises_the_bar_of_the_setting_it_repeats_and_is_no_setting_itself():
    # 10 epochs alone: 47 with pictures, 10 above the bar (37); 45 with blank images, so 2 above the blind score
    blind = _probes().iloc[[1]].assign(score=45.0, images="blank", **{"score - bar": 8.0})
    probes = pd.concat([_probes().assign(images="shown"), blind], ignore_index=True)
    table = what_it_takes(_learnability(), probes, margin=10.0, default_samples=1000)
    ad = table.loc["AD"]
    assert ad["settings tried"] == 4                                    # the blind run is not a setting
    assert ad["learned by"] == "none"
    # 42 - 37 = 5 in sequence is now the best distance: 47 - 45 = 2
    assert (ad["best setting"], ad["best score"], ad["best - bar"]) == ("in sequence, 3 epochs", 42.0, 5.0)
    assert ad["blank images"] == "alone, tiny-3m, 10 epochs: 45"
    every = what_it_takes(_learnability(), probes, margin=-100.0, default_samples=1000).loc["AD", "learned by"]
    assert "alone, tiny-3m, 10 epochs (blind: 45)" in every.split("; ")
    # a blind score under the bar leaves the setting's distance to the bar as it was
    low = what_it_takes(_learnability(), pd.concat([_probes(), blind.assign(score=30.0)], ignore_index=True),
                        margin=10.0, default_samples=1000).loc["AD"]
    assert low["learned by"] == "alone, tiny-3m, 10 epochs (blind: 30)"
    assert table.loc["Sci", "blank images"] == ""


def test_the_sequence_is_held_to_the_blind_probe_of_its_model_and_epochs_alone():
    # 3 epochs in sequence: AD 42 (bar 37, +5) and Sci 52 (bar 41, +11); blind alone at 3 epochs: Sci 44
    blind = pd.DataFrame([{"task": "Sci", "model": "tiny-3m", "method": "lora_ft", "epochs": 3.0,
                           "train samples": 1000, "images": "blank", "score": 44.0, "score - bar": 3.0}])
    probes = pd.concat([_probes().assign(images="shown"), blind], ignore_index=True)
    sci = what_it_takes(_learnability(), probes, margin=10.0, default_samples=1000, sequence_model="tiny-3m").loc["Sci"]
    assert sci["learned by"] == "none"                                  # 52 - 44 = 8
    assert sci["best setting"] == "in sequence, 3 epochs (blind alone: 44)" and sci["best - bar"] == 8.0
    # another model's blind probe, or none named for the sequence, leaves it as it was
    other = what_it_takes(_learnability(), probes, margin=10.0, default_samples=1000, sequence_model="tiny-20m")
    assert other.loc["Sci", "learned by"] == "in sequence, 3 epochs"
    assert what_it_takes(_learnability(), probes, margin=10.0, default_samples=1000).loc["Sci", "learned by"] \
        == "in sequence, 3 epochs"


def test_a_zero_shot_probe_is_the_base_models_score_and_no_setting_that_learns():
    zero_shot = {"task": "Sci", "model": "tiny-3m", "method": "zero_shot", "epochs": 1.0, "train samples": 1000,
                 "score": 90.0, "score - bar": 49.0}
    probes = pd.concat([_probes(), pd.DataFrame([zero_shot])], ignore_index=True)
    table = what_it_takes(_learnability(), probes, margin=10.0, default_samples=1000)
    assert table.loc["Sci", "learned by"] == "in sequence, 3 epochs"
    assert table.loc["Sci", "best score"] == 52.0 and table.loc["Sci", "settings tried"] == 3
