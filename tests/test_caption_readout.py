"""The caption read-out: which kinds and colours a base model's captions name, against the drawn ones."""

from __future__ import annotations

import pytest

from cvitkit.caption_readout import (FIRST_INDEX, caption_tasks, overlap_scores, readout_domain, words_named)
from cvitkit.data import load_suite
from cvitkit.errors import ConfigError


def test_kind_words_are_found_whole_in_the_singular_and_the_plural():
    kinds, plurals = ("car", "bus", "person"), {"car": "cars", "bus": "buses", "person": "people"}
    assert words_named("two buses and a car", kinds, plurals) == {"bus", "car"}
    assert words_named("three people on a scarf near a carpet", kinds, plurals) == {"person"}
    assert words_named("nothing here", kinds, plurals) == set()


def test_overlap_scores_match_a_hand_computation():
    named = [{"car"}, {"car", "bus"}, set()]
    drawn = [{"car"}, {"bus", "cone"}, {"sign"}]
    # right names: 1 + 1 = 2 of 3 named and of 4 drawn; chance: (1 + 2 + 1) / 6 kinds / 3 pictures
    right, found, chance = overlap_scores(named, drawn, vocabulary=6)
    assert right == pytest.approx(200 / 3) and found == pytest.approx(50.0)
    assert chance == pytest.approx(100 * (1 / 6 + 2 / 6 + 1 / 6) / 3)
    assert overlap_scores([set()], [{"car"}], 6)[:2] == (0.0, 0.0)


def test_every_drawn_caption_names_exactly_its_pictures_kinds_and_colours():
    """The read-out parses the generator's own captions without a miss, so a perfect captioner scores 100."""
    from cvitkit.data.build import draw_sample
    from cvitkit.data.synthetic.domains import DOMAINS

    suite = load_suite("vision_pretrain")
    tasks = caption_tasks(suite)
    assert {t.domain for t in tasks} == set(DOMAINS)
    for spec in tasks:
        domain = DOMAINS[spec.domain]
        plurals = {k: domain.plural(k) for k in domain.kinds}
        for i in range(40):
            sample = draw_sample(suite.name, spec, "test", FIRST_INDEX + i, 0, 64, "default")
            objects = sample.truth["objects"]
            assert words_named(sample.answer, domain.kinds, plurals) == {o["kind"] for o in objects}
            assert words_named(sample.answer, domain.colours, {}) == {o["colour"] for o in objects}


def test_a_domain_row_of_a_model_is_scored_against_its_fresh_pictures(micro_llava):
    model, processor = micro_llava
    spec = next(t for t in caption_tasks(load_suite("vision_pretrain")) if t.domain == "medical")
    row = readout_domain(model.eval(), processor, "vision_pretrain", spec, pictures=4, seed=0, image_size=32)
    assert row["domain"] == "medical" and row["pictures"] == 4 and row["kinds"] == 4
    for column in ("named right", "found", "chance", "colour named right", "colour chance"):
        assert 0 <= row[column] <= 100
    assert 25 <= row["chance"] <= 75   # 1 to 3 objects of 4 kinds
    assert row["drawn caption"].endswith("on a slide")


def test_a_suite_without_per_domain_captions_is_refused():
    with pytest.raises(ConfigError, match="Caption-<domain>.*Fix"):
        caption_tasks(load_suite("pretrain"))


def test_the_command_refuses_a_profile_without_a_pretrained_base():
    from cvitkit.caption_readout import main

    with pytest.raises(ConfigError, match="does not pretrain a base model.*Fix: use the mini profile"):
        main(["--profile", "smoke"])


def test_the_read_outs_load_the_model_their_options_name(micro_smoke_profile):
    import argparse

    from cvitkit.object_readout import load_probed_base
    from cvitkit.probe import add_tower_options

    parser = argparse.ArgumentParser()
    add_tower_options(parser)
    profile = micro_smoke_profile()
    loaded, side, model, _ = load_probed_base(profile, parser.parse_args([]))
    assert loaded == profile and side is None and not model.training
    with pytest.raises(ConfigError, match="Fix: use the mini profile"):
        load_probed_base(profile, parser.parse_args(["--vision-epochs", "20"]))
