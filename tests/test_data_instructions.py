"""The instruction-diversity switch (``data.instructions``; run ``branchlora__diverse``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cvitkit.data import DataConfig, build_suite, load_suite, load_suite_data
from cvitkit.data.build import build_hash, data_folder, is_built, make_samples
from cvitkit.data.synthetic.instructions import EXTRA, phrasings
from cvitkit.data.synthetic.templates import TEMPLATES
from cvitkit.errors import ConfigError, DataError
from tests.test_data_real import write_fixture

SMALL = {"train_per_task": 30, "test_per_task": 4, "image_size": 32}


@pytest.fixture(scope="module")
def coin_builds(tmp_path_factory):
    """CoIN built in both styles, each in the folder the runner would use."""
    root = tmp_path_factory.mktemp("data") / "data"
    out = {}
    for style in ("default", "diverse"):
        cfg = DataConfig(**SMALL, instructions=style)
        out[style] = build_suite("coin", cfg, data_folder(root, cfg), progress=False)
    return out


def _first_line(record: dict) -> str:
    """The instruction stem: the human turn without the image token, options block or suffix."""
    return record["conversations"][0]["value"].replace("<image>", "").strip().split("\n")[0]


def _template_of(question: str) -> str | None:
    """The phrasing (of any style) ``question`` was filled from, or None. Default phrasings are tried
    first: a loose pattern of an extra one may also match a filled-in default one."""
    ordered = [t for key in TEMPLATES for t in TEMPLATES[key]] + [t for key in EXTRA for t in EXTRA[key]]
    for template in ordered:
        pattern = "".join(".+?" if part.startswith("{") else re.escape(part)
                          for part in re.split(r"(\{\w+\})", template))
        if re.fullmatch(pattern, question):
            return template
    return None


def test_diverse_style_has_more_phrasings_per_task(coin_builds):
    for task in load_suite("coin").task_names:
        used = {}
        for style, folder in coin_builds.items():
            records = json.loads((folder / task / "train.json").read_text())
            templates = [_template_of(_first_line(r)) for r in records]
            assert None not in templates, f"{task}: a {style} question matches no template"
            used[style] = set(templates)
        assert len(used["diverse"]) > len(used["default"]), (task, used)
        assert used["default"] <= {t for key in TEMPLATES for t in TEMPLATES[key]}  # default: old phrasings only


def test_every_question_type_gets_about_ten_distinct_phrasings():
    assert set(EXTRA) == set(TEMPLATES)
    for key in TEMPLATES:
        diverse = phrasings(key, "diverse")
        assert len(set(diverse)) == len(diverse) >= 10, key
        assert phrasings(key) == TEMPLATES[key]
        fields = {f for t in TEMPLATES[key] for f in re.findall(r"\{(\w+)\}", t)}
        for template in EXTRA[key]:  # an extra may not need a value the generator does not pass
            assert set(re.findall(r"\{(\w+)\}", template)) <= fields, (key, template)


def test_test_records_images_and_answers_are_identical_across_styles(coin_builds):
    default, diverse = coin_builds["default"], coin_builds["diverse"]
    changed = 0
    for task in load_suite("coin").task_names:
        assert (default / task / "test.json").read_bytes() == (diverse / task / "test.json").read_bytes()
        old = json.loads((default / task / "train.json").read_text())
        new = json.loads((diverse / task / "train.json").read_text())
        # only the wording changes: same ids, images and answers
        assert [(r["id"], r["image"], r["conversations"][1]) for r in old] == \
               [(r["id"], r["image"], r["conversations"][1]) for r in new]
        changed += sum(a["conversations"][0] != b["conversations"][0] for a, b in zip(old, new))
    for png in sorted(default.glob("images/*/*.png")):
        assert png.read_bytes() == (diverse / png.relative_to(default)).read_bytes(), png
    assert changed > 0


def test_same_seed_same_data_and_other_seed_other_data():
    task = load_suite("coin").task("VQAv2")

    def questions(seed):
        samples = make_samples("coin", task, "train", 0, 20, seed, 32, "diverse")
        return [r["conversations"][0]["value"] for r, _ in samples]

    assert questions(0) == questions(0)
    assert questions(0) != questions(1)


def test_styles_are_built_in_their_own_folders_with_their_own_keys(tmp_path, coin_builds):
    default, diverse = DataConfig(**SMALL), DataConfig(**SMALL, instructions="diverse")
    assert data_folder(tmp_path / "data", default) == tmp_path / "data"
    assert data_folder(tmp_path / "data", diverse) == tmp_path / "data_instructions-diverse"
    suite = load_suite("coin")
    assert build_hash(suite, default) != build_hash(suite, diverse)
    # each finished build is valid only for its own style: no silent reuse of the other one
    assert is_built(suite, default, coin_builds["default"].parent)
    assert not is_built(suite, diverse, coin_builds["default"].parent)
    assert is_built(suite, diverse, coin_builds["diverse"].parent)
    with pytest.raises(ConfigError, match="data.instructions must be one of default, diverse"):
        DataConfig(instructions="fancy")


def test_the_variant_resolves_with_its_data_section_and_reaches_the_runner(monkeypatch):
    from cvitkit import runner
    from cvitkit.experiments import plan, resolve_run

    spec = resolve_run("branchlora__diverse")
    assert (spec.method, spec.variant, spec.data) == ("branchlora", "diverse", {"instructions": "diverse"})
    assert resolve_run("branchlora").data == {}
    for profile in ("mini", "full"):
        assert "branchlora__diverse" in plan(profile)["coin"]
    seen = {}
    monkeypatch.setattr(runner, "run_method", lambda profile, suite, method, **kw: seen.update(
        profile=profile, method=method, **kw))
    runner.run_named("smoke", "coin", "branchlora__diverse")
    assert seen["method"] == "branchlora" and seen["variant"] == "diverse"
    assert seen["profile"].data.instructions == "diverse"
    runner.run_named("smoke", "coin", "branchlora")
    assert seen["profile"].data.instructions == "default"


@pytest.mark.parametrize("data, message", [
    ({"instruction": "diverse"}, r"unknown data key\(s\) \['instruction'\].*instructions"),
    ({"instructions": "fancy"}, "data.instructions must be one of default, diverse"),
    ("diverse", "'data' must be a mapping"),
])
def test_bad_variant_data_section_is_a_clear_config_error(tmp_path, data, message):
    from cvitkit.experiments import resolve_run

    (tmp_path / "branchlora.yaml").write_text(json.dumps({"method": "branchlora", "variants": {"odd": {"data": data}}}))
    with pytest.raises(ConfigError, match=message) as err:
        resolve_run("branchlora__odd", config_dir=tmp_path)
    assert "branchlora.yaml" in str(err.value) and "odd" in str(err.value)


def test_tokenizer_covers_the_diverse_phrasings_without_changing_the_corpus():
    from cvitkit.data import corpus
    from cvitkit.models.tiny import build_processor, resolve_tiny_config

    lines = corpus()
    # the corpus (hence the tokenizer and the cached base models) is the same as without the switch
    assert not {t for extras in EXTRA.values() for t in extras} & set(lines)
    tok = build_processor(resolve_tiny_config("tiny-3m"), lines).tokenizer

    def tokens_per_word(templates):
        texts = [re.sub(r"\{\w+\}", "cat", t) for t in templates]
        n_tokens = sum(len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts)
        return n_tokens / sum(len(t.split()) for t in texts)

    split = []
    for key, extras in EXTRA.items():
        assert tokens_per_word(extras) <= 1.25 * tokens_per_word(TEMPLATES[key]), key
        for template in extras:
            words = re.findall(r"[A-Za-z]+", re.sub(r"\{\w+\}", "", template))
            split += [w for i, w in enumerate(words) if len(tok((" " if i else "") + w, add_special_tokens=False)
                                                            ["input_ids"]) > 1]
    assert not split, f"words of diverse phrasings that are not whole tokens: {sorted(set(split))}"


def test_real_diverse_files_are_read_and_a_missing_one_names_its_path(tmp_path):
    write_fixture(tmp_path, "coin")
    with pytest.raises(DataError, match=r"ScienceQA training file \(diverse instructions\).*Instruction_Type2"):
        load_suite_data("coin", data_root=tmp_path, instructions="diverse")
    suite = load_suite("coin")
    for t in suite.tasks:
        records = json.loads((tmp_path / t.real["train"]).read_text())
        for r in records:
            r["conversations"][0]["value"] = "<image>\nTell me what you see."
        path = tmp_path / t.real["train_diverse"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(records))
    default = load_suite_data("coin", data_root=tmp_path)
    diverse = load_suite_data("coin", data_root=tmp_path, instructions="diverse")
    assert diverse.test == default.test
    assert {r["conversations"][0]["value"] for recs in diverse.train.values() for r in recs} == \
           {"<image>\nTell me what you see."}
    write_fixture(tmp_path, "mllmcl_dcl")
    with pytest.raises(DataError, match=r"no real 'train_diverse' file.*configs/suites/mllmcl_dcl.yaml"):
        load_suite_data("mllmcl_dcl", data_root=tmp_path, instructions="diverse")


def test_default_style_marker_and_records_carry_no_style(coin_builds):
    marker = json.loads((coin_builds["default"] / "_finished.json").read_text())
    assert "instructions" not in marker
    assert json.loads((coin_builds["diverse"] / "_finished.json").read_text())["instructions"] == "diverse"
    assert Path(coin_builds["diverse"]).parent.name == "data_instructions-diverse"
