"""Synthetic generator: determinism, and every family's answer checked against what was drawn."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest

from cvitkit.data import DataConfig, build_suite, load_suite
from cvitkit.data.synthetic import DOMAINS, FAMILIES, generate, sample_rng
from cvitkit.data.synthetic.places import PLACES
from cvitkit.data.synthetic.templates import GUI_LABELS, LETTERS, WORDS
from cvitkit.errors import ConfigError

SUITES = ["coin", "mllmcl_dcl", "mllmcl_acl", "strcvit", "ucit", "trigap", "pretrain"]
N = 30  # samples per check: enough to hit every question type


def samples(family, domain, options=None, n=N, size=64, seed=0):
    return [generate(family, domain, options or {}, sample_rng(seed, "test", family, domain, i), size)
            for i in range(n)]


def pixels(img, box):
    x0, y0, x1, y1 = box
    return np.asarray(img)[y0:y1, x0:x1].reshape(-1, 3)


def colour_fraction(img, box, rgb) -> float:
    px = pixels(img, box)
    return float((px == np.array(rgb)).all(axis=1).mean()) if len(px) else 0.0


def assert_drawn(img, domain, objects, min_frac=0.08):
    """Each object of ``truth`` is really in the image: its fill colour covers part of its box."""
    d = DOMAINS[domain]
    for o in objects:
        assert colour_fraction(img, o["box"], d.colours[o["colour"]]) >= min_frac, o


def test_registry_has_required_families_and_domains():
    need_f = {"classify", "vqa", "relation", "unanswerable", "mcq", "ocr", "ground", "math", "chart", "gui",
              "caption", "scene"}
    need_d = {"natural", "remote", "medical", "driving", "diagram", "chart", "document", "gui", "places"}
    assert need_f <= set(FAMILIES) and need_d <= set(DOMAINS)
    pretrain_domains = {t.domain for t in load_suite("pretrain").tasks}
    others = {t.domain for s in SUITES if s != "pretrain" for t in load_suite(s).tasks}
    assert pretrain_domains.isdisjoint(others), "the pretraining mix must use a domain no benchmark suite uses"


@pytest.mark.parametrize("size", [32, 64, 128])
def test_every_suite_task_generates_at_each_resolution(size):
    for suite in SUITES:
        for t in load_suite(suite).tasks:
            for split in ("train", "test"):
                s = generate(t.family, t.domain, t.generator_options(split), sample_rng(1, suite, t.name, split), size)
                assert s.image.size == (size, size) and s.image.mode == "RGB"
                assert s.question.strip() and s.answer.strip()
                refs = s.references if isinstance(s.references, list) else [s.references]
                assert refs and all(r.strip() for r in refs)


def test_several_templates_per_family():
    for fam, dom, opts in [("vqa", "natural", {}), ("classify", "natural", {}), ("ground", "natural", {}),
                           ("caption", "toy", {}), ("gui", "gui", {}), ("math", "diagram", {})]:
        first_lines = {s.question.split("\n")[0] for s in samples(fam, dom, opts, n=40)}
        assert len(first_lines) >= 3, (fam, first_lines)


def test_vqa_answers_match_the_drawn_objects():
    for dom in ("natural", "remote", "medical", "render", "toy", "driving"):
        for s in samples("vqa", dom, n=40):
            objs = s.truth["objects"]
            assert_drawn(s.image, dom, objs)
            q = s.question
            if "count" in s.truth:
                assert s.answer == str(sum(o["kind"] == s.truth["target_kind"] for o in objs)) == str(s.truth["count"])
                assert 1 <= int(s.answer) <= 6
            elif "present" in s.truth:
                kind, colour = s.truth["query"]
                assert s.answer == ("yes" if any(o["kind"] == kind and o["colour"] == colour for o in objs) else "no")
            else:
                target = s.truth["target"]
                if s.answer == target["colour"]:  # colour question names the kind, which is unique
                    assert target["kind"] in q and sum(o["kind"] == target["kind"] for o in objs) == 1
                else:
                    assert s.answer == target["kind"] and target["colour"] in q
                    assert sum(o["colour"] == target["colour"] for o in objs) == 1


def test_classify_scene_and_relation_answers():
    for s in samples("classify", "natural"):
        assert s.answer == s.truth["objects"][0]["kind"] and s.answer in DOMAINS["natural"].kinds
        assert_drawn(s.image, "natural", s.truth["objects"])
    for s in samples("scene", "places"):
        assert s.answer in PLACES and s.answer == s.truth["label"]
    for dom in ("natural", "driving"):
        for s in samples("relation", dom, n=50):
            a, b = s.truth["a"], s.truth["b"]
            ca = ((a["box"][0] + a["box"][2]) / 2, (a["box"][1] + a["box"][3]) / 2)
            cb = ((b["box"][0] + b["box"][2]) / 2, (b["box"][1] + b["box"][3]) / 2)
            rel = s.truth["relation"]
            expected = {"left": ca[0] < cb[0], "right": ca[0] > cb[0], "above": ca[1] < cb[1], "below": ca[1] > cb[1]}
            assert expected[rel], s.truth
            assert s.answer in (rel, a["kind"], a["colour"], "yes", "no")
            if s.answer in ("yes", "no"):
                asked = "left" if "left" in s.question else "right"
                assert (s.answer == "yes") == (asked == rel)


def test_ground_box_is_the_drawn_target():
    for s in samples("ground", "natural", n=40):
        target = s.truth["target"]
        box = [float(v) for v in re.findall(r"[\d.]+", s.answer)]
        assert [round(v * 64) for v in box] == target["box"]
        # the target is drawn there: its fill and outline pixels span most of the answer box (IoU > 0.5)
        x0, y0, x1, y1 = target["box"]
        arr = np.asarray(s.image)[y0:y1, x0:x1]
        fill = (arr == np.array(DOMAINS["natural"].colours[target["colour"]])).all(axis=2)
        ys, xs = np.where(fill | (arr == 0).all(axis=2))
        assert fill.any()
        ink = (xs.min() + x0, ys.min() + y0, xs.max() + 1 + x0, ys.max() + 1 + y0)
        assert (ink[2] - ink[0]) * (ink[3] - ink[1]) / ((x1 - x0) * (y1 - y0)) > 0.5, (ink, target)
        expr = s.truth["expr"]
        matches = [o for o in s.truth["objects"]
                   if o["kind"] in expr and (o["colour"] in expr or expr == f"the {o['kind']}")]
        assert matches == [target], "the referring expression must name exactly one object"


def test_gui_point_lies_in_the_drawn_button():
    for s in samples("gui", "gui"):
        x, y = (float(v) for v in re.findall(r"[\d.]+", s.answer))
        x1, y1, x2, y2 = (float(v) for v in re.findall(r"[\d.]+", s.references))
        assert x1 < x < x2 and y1 < y < y2
        target = s.truth["target"]
        assert target["label"].upper() in GUI_LABELS and target["label"] in s.question
        assert colour_fraction(s.image, target["box"], DOMAINS["gui"].colours[target["colour"]]) > 0.3


def test_math_and_chart_answers():
    for s in samples("math", "diagram"):
        t = s.truth
        assert int(s.answer) == {"+": t["a"] + t["b"], "-": t["a"] - t["b"]}[t["op"]] >= 0
    for s in samples("math", "render", {"mode": "objects"}):
        objs, q = s.truth["objects"], s.question
        assert_drawn(s.image, "render", objs)
        if s.truth["operation"] == "sub_colour":
            colour = next(c for c in DOMAINS["render"].colours if f" {c} " in q)
            assert int(s.answer) == sum(o["colour"] != colour for o in objs)
        elif s.truth["operation"] == "add":
            m = int(re.search(r"\d", q).group())
            assert int(s.answer) == m + sum(o["kind"] in q for o in objs)
    for s in samples("chart", "chart", {"questions": ["value", "max"]}):
        bars = s.truth["objects"]
        assert_drawn(s.image, "chart", bars, min_frac=0.5)
        heights = [o["box"][3] - o["box"][1] for o in bars]  # taller bar = larger value
        assert sorted(heights) == [h for _, h in sorted(zip([o["value"] for o in bars], heights))]
        if s.answer.isdigit():
            assert int(s.answer) == s.truth["target"]["value"]
        else:
            assert s.answer == max(bars, key=lambda o: o["value"])["colour"]
    for s in samples("chart", "chart", {"chart": "candle", "answer_format": "mixed", "trends": ["up", "down"],
                                        "suffixes": {"yesno": "YN", "letter": "L"}}, n=40):
        v, trend = s.truth["values"], s.truth["trend"]
        assert (v[-1] - v[0] >= 3) if trend == "up" else (v[-1] - v[0] <= -3)
        if s.truth["format"] == "yesno":
            asked_trend = f"going {trend}" in s.question or f"go {trend}" in s.question
            assert s.suffix == "YN" and s.answer == ("yes" if asked_trend else "no")
        else:
            assert s.suffix == "L" and f"{s.answer}. {trend}" in s.question


def test_mcq_letter_points_at_the_correct_option():
    for topics, dom in ([["shape", "colour", "count", "larger"], "diagram"], [["molecule"], "diagram"],
                        [["lines"], "chart"], [["shape", "count", "colour"], "gui"], [["shape", "larger"], "medical"]):
        for s in samples("mcq", dom, {"topics": topics}):
            assert s.answer in LETTERS[:4]
            assert f"{s.answer}. {s.truth['correct']}" in s.question.split("\n")
            if s.truth["topic"] == "count":
                assert s.truth["correct"] == str(sum(o["kind"] in s.question for o in s.truth["objects"]))
            if s.truth["topic"] == "molecule":
                element = next(e for e in ("oxygen", "nitrogen", "carbon") if f"{e} atoms" in s.question)
                assert s.truth["correct"] == str(sum(o["kind"] == element for o in s.truth["objects"]))


def test_ocr_caption_unanswerable_answers():
    words = {w.lower() for w in WORDS}
    for layout, opts in [("sign", {"n_references": 10}), ("page", {}), ("cover", {"questions": ["title", "genre"]}),
                         ("document", {"questions": ["title", "boxed"]}), ("infographic", {})]:
        for s in samples("ocr", "natural" if layout == "sign" else "document", {"layout": layout, **opts}, n=15):
            if layout == "infographic":
                k = s.truth["words"].index(next(w for w in s.truth["words"] if w in s.question))
                assert s.answer == str(s.truth["values"][k])
            elif "genre" in s.question or "type of book" in s.question:
                assert s.answer == s.truth["genre"]
            else:
                assert s.answer in words and s.answer in (s.truth["word"], s.truth.get("boxed"))
            if layout == "sign":
                assert len(s.references) == 10 and s.references.count(s.answer) >= 8
    for s in samples("caption", "places"):
        assert s.answer in s.references and len(s.references) >= 3
        for o in s.truth["objects"]:
            assert all(f"{o['colour']} {o['kind']}" in r for r in s.references)
    for s in samples("caption", "natural", {"with_text": True, "n_objects": [1, 2]}):
        assert all(s.truth["word"] in r for r in s.references)
    modes = set()
    for s in samples("unanswerable", "natural", n=60):
        modes.add(s.truth["mode"])
        if s.truth["mode"] == "covered":
            assert s.answer == "unanswerable" and np.asarray(s.image).std() < 12
        elif s.truth["mode"] == "absent":
            assert s.answer == "unanswerable"
            assert not any(f"the {o['kind']}" in s.question or f"the {o['colour']} object" in s.question
                           for o in s.truth["objects"])
        else:
            assert s.answer in (s.truth["target"]["colour"], s.truth["target"]["kind"])
    assert modes == {"covered", "absent", "answerable"}


def test_generator_option_errors_are_clear():
    with pytest.raises(ConfigError, match="unknown option.*'colours'.*Valid options"):
        generate("vqa", "natural", {"colours": 3}, sample_rng(0), 64)
    with pytest.raises(ConfigError, match="unknown domain 'moon'"):
        generate("vqa", "moon", {}, sample_rng(0), 64)
    with pytest.raises(ConfigError, match="question type"):
        generate("vqa", "natural", {"questions": ["why"]}, sample_rng(0), 64)


def _digest(folder):
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(folder)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_same_seed_same_bytes_and_other_seed_differs(tmp_path):
    cfg = DataConfig(train_per_task=6, test_per_task=3, stream_chunk_size=8, stream_lengths=[15])
    a = build_suite("strcvit", cfg, tmp_path / "a", progress=False)
    b = build_suite("strcvit", cfg, tmp_path / "b", progress=False)
    assert _digest(a) == _digest(b)
    c = build_suite("strcvit", DataConfig(**{**cfg.__dict__, "seed": 1}), tmp_path / "c", progress=False)
    assert _digest(a) != _digest(c)


def test_process_pool_output_is_byte_identical_to_serial(tmp_path):
    cfg = DataConfig(train_per_task=70, test_per_task=5)
    serial = build_suite("mllmcl_acl", cfg, tmp_path / "serial", progress=False)
    par = build_suite("mllmcl_acl", DataConfig(**{**cfg.__dict__, "workers": 2}), tmp_path / "par", progress=False)
    assert _digest(serial) == _digest(par)
