"""MR-LoRA mechanisms: isolated experts from the base, the router's parse rule and training, oracle
routing, closed-form parameter counts, and save → reload → identical routing decisions."""

from __future__ import annotations

import dataclasses
import random

import pytest
import torch

from cvitkit.adapters import add_lora, count_adapter_parameters
from cvitkit.data import EvalCollator, Experience, RecordDataset, load_suite
from cvitkit.data.llava_format import eval_record, train_record
from cvitkit.methods.base import build_method
from cvitkit.adapters.mr_lora import expected_parameters, lora_parameters
from cvitkit.models import build_tiny_llava
from cvitkit.models.targets import lora_target_regex, matched_modules
from cvitkit.routers.mr_lora import fallback_rng, parse_router_output, router_epochs_for, router_prompt
from cvitkit.train import ContinualTrainer
from cvitkit.train_config import TrainConfig
from tests.conftest import make_image

# DCL's RS (router letter E) and Fin (letter A: not the task order), with short descriptions so that the
# micro model's router prompt stays short (its tokenizer has no vocabulary: ~1 token per character).
_DCL = load_suite("mllmcl_dcl")
SUITE = dataclasses.replace(_DCL, tasks=[dataclasses.replace(_DCL.task("RS"), description="aerial views"),
                                         dataclasses.replace(_DCL.task("Fin"), description="stock charts")])
TOY = {"RS": ("red", "How many buildings are in the aerial view {i}?\nAnswer the question using a single word.", "3"),
       "Fin": ("blue", "Is the stock price of chart {i} going up? Only answer with yes or no directly.", "yes")}
FAST = {"rank": 4, "alpha": 8, "router_rank": 4, "router_alpha": 8, "router_shots": 8, "router_epochs": 12,
        "router_epochs_by_shots": False, "router_batch_size": 8, "router_lr": 1e-2, "router_projector_lr": 1e-3,
        "router_max_new_tokens": 4, "epochs": 1.0}


def _toy_data(root):
    train, test = {}, {}
    for task, (colour, question, answer) in TOY.items():
        make_image(32, colour).save(root / f"{task}.png")
        train[task] = [train_record(f"{task}_{i}", f"{task}.png", question.format(i=i), answer, task=task)
                       for i in range(16)]
        test[task] = [eval_record(f"{task}_t{i}", f"{task}.png", question.format(i=100 + i), answer, task=task)
                      for i in range(6)]
    exps = [Experience(i, t, i, train[t], i == 0, i == 1, image_root=root) for i, t in enumerate(TOY)]
    return exps, test


def _method(overrides=None):
    model, processor = build_tiny_llava("micro", seed=0)
    method = build_method("mr_lora", "mini", {**FAST, **(overrides or {})}, suite=SUITE, seed=0)
    method.setup(model, processor)
    return method


def _run(method, root, exps, test, run_dir=None):
    trainer = ContinualTrainer(method, method.processor, {t: SUITE.task(t) for t in TOY}, test, root,
                               run_dir or root / "run",
                               TrainConfig(batch_size=8, eval_batch_size=6, log_every=1), log=lambda *_: None)
    return trainer, trainer.run(exps)


def _eval_batch(method, test, root):
    records = test["RS"][:3] + test["Fin"][:3]
    dataset = RecordDataset(records, root)
    return EvalCollator(method.processor)([dataset[i] for i in range(len(records))])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two tasks (RS then Fin) through the real trainer; snapshots of expert_0 before task 2."""
    root = tmp_path_factory.mktemp("mr_lora")
    exps, test = _toy_data(root)
    method = _method()
    snapshots = {}
    original = method.before_experience

    def spy(exp):
        if exp.index == 1:
            snapshots["expert_0"] = {n: p.detach().clone() for n, p in method.model.named_parameters()
                                     if ".expert_0." in n}
        original(exp)
        if exp.index == 1:
            snapshots["expert_1_init"] = {n: p.detach().clone() for n, p in method.model.named_parameters()
                                          if ".expert_1." in n}

    method.before_experience = spy
    trainer, stages = _run(method, root, exps, test)
    return {"method": method, "root": root, "exps": exps, "test": test, "stages": stages, "trainer": trainer,
            **snapshots}


def test_presets_keep_the_release_values_and_scale_down():
    paper = build_method("mr_lora", "paper").config
    assert (paper.rank, paper.alpha, paper.router_rank, paper.router_shots) == (128, 256, 128, 20)
    assert paper.router_epochs == 40 and paper.router_batch_size == 32
    assert (paper.lr, paper.projector_lr, paper.router_lr, paper.router_projector_lr) == (2e-5, 2e-5, 5e-6, 5e-6)
    assert paper.task_epochs["Med"] == 3 and paper.task_epochs["RS"] == 1 and paper.task_lr["OCR"] == 5e-6
    mini = build_method("mr_lora", "mini").config
    assert (mini.rank, mini.alpha, mini.router_rank) == (8, 16, 8) and mini.task_epochs == {}


def test_router_epochs_follow_the_release_shot_sweep():
    assert [router_epochs_for(s, 40) for s in (10, 20, 30, 50, 100)] == pytest.approx([80, 40, 34, 20, 10])
    assert router_epochs_for(5, 40) == pytest.approx(160)  # shots × epochs held at 800 below the table
    assert router_epochs_for(5, 20) == pytest.approx(80)  # a scaled-down default scales the whole sweep


@pytest.mark.parametrize("text, letter, fallback", [
    ("A", "A", False), (" B ", "B", False), ("C.", "C", False), ("EA", "A", False),  # A checked before E
    ("E</", None, True),  # two characters outside the letter set
    ("The answer is B", None, True), ("", None, True), ("F", None, True),  # F is not a letter of an expert
])
def test_parse_rule_on_hand_written_outputs(text, letter, fallback):
    got, fell_back = parse_router_output(text, ["A", "B", "C", "D", "E"], random.Random(0))
    assert fell_back is fallback
    if letter is not None:
        assert got == letter


def test_fallback_is_random_over_existing_experts_and_seeded():
    picks = [parse_router_output("??", ["C", "E"], fallback_rng(0, 2, f"q{i}"))[0] for i in range(200)]
    assert set(picks) == {"C", "E"} and 60 < picks.count("C") < 140
    again = [parse_router_output("??", ["C", "E"], fallback_rng(0, 2, f"q{i}"))[0] for i in range(200)]
    assert picks == again
    # a letter of an expert that does not exist yet is no valid letter
    assert parse_router_output("A", ["C", "E"], random.Random(1))[1] is True


def test_fallbacks_are_counted_in_statistics():
    method = _method()
    method.experts = [{"name": "expert_0", "task": "RS", "letter": "E"},
                      {"name": "expert_1", "task": "Fin", "letter": "A"}]
    picks = method.decide(["A", "xyz", "E", ""], ["a", "b", "c", "d"], ["Fin", "Fin", "RS", "RS"])
    assert picks[0] == (1, False) and picks[2] == (0, False) and picks[1][1] and picks[3][1]
    assert picks == method.decide(["A", "xyz", "E", ""], ["a", "b", "c", "d"], ["Fin", "Fin", "RS", "RS"])
    assert dict(method._eval["fallback"]) == {"Fin": 2, "RS": 2}


def test_router_prompt_lists_experts_in_letter_order():
    text = router_prompt([("E", "remote sensing"), ("A", "finance")], "Is it up?")
    assert text.index("A: finance") < text.index("E: remote sensing") and "Question: Is it up?" in text
    assert "(A, E)" in text


def test_new_expert_starts_from_the_base_not_from_the_previous_expert(trained):
    method = trained["method"]
    fresh, _ = build_tiny_llava("micro", seed=0)
    with torch.random.fork_rng():
        torch.manual_seed(method.init_seed("expert", 1))
        fresh = add_lora(fresh, 4, 8, 0.0, adapter_name="expert_1")
    reference = {n: p for n, p in fresh.named_parameters() if ".expert_1." in n}
    init = trained["expert_1_init"]
    assert init.keys() == reference.keys() and len(init) == 28  # 14 adapted linears × (A, B)
    for n, p in init.items():
        torch.testing.assert_close(p, reference[n])
        if "lora_B" in n:
            assert p.abs().sum() == 0
    # the trained expert_0 differs from a fresh init, yet expert_1 equals one: no inheritance
    assert any(not torch.equal(p, reference[n.replace("expert_0", "expert_1")])
               for n, p in trained["expert_0"].items() if "lora_B" in n)


def test_old_expert_frozen_and_unchanged_after_training_the_next(trained):
    method = trained["method"]
    params = dict(method.model.named_parameters())
    for n, before in trained["expert_0"].items():
        assert torch.equal(params[n], before) and not params[n].requires_grad
    # expert_1 moved away from its initialisation, and each expert kept its own projector
    assert any(not torch.equal(params[n], p) for n, p in trained["expert_1_init"].items())
    p0, p1 = method.projectors["expert_0"], method.projectors["expert_1"]
    assert any(not torch.equal(p0[k], p1[k]) for k in p0) and any(not torch.equal(p0[k], method.base_projector[k])
                                                                  for k in p0)


def test_mllm_router_picks_the_right_expert_on_separable_tasks(trained):
    method = trained["method"]
    log = method.router_log
    assert log["trained"] and log["samples"] == 16 and log["steps"] == 24
    assert log["loss_last"] < log["loss_first"] - 1.0  # a random micro model keeps flat logits: argmax matters
    batch = _eval_batch(method, trained["test"], trained["root"])
    choice, meta = method.route(method.prepare_batch(batch, training=False), batch)
    assert [method.experts[k]["task"] for k in choice] == batch["tasks"]
    assert [m["expert"] for m in meta] == ["E"] * 3 + ["A"] * 3 and not any(m["fallback"] for m in meta)
    # the trainer's evaluation after task 2 recorded router accuracy per task (held-out questions)
    import json

    stats = json.loads((trained["trainer"].stage_dir(1) / "statistics.json").read_text())
    assert stats["router_accuracy"] == {"RS": 100.0, "Fin": 100.0, "overall": 100.0}
    assert stats["router_fallbacks"]["overall"] == 0 and stats["two_stage_cost"]["router_seconds"] > 0


def test_oracle_routes_by_the_task_builds_no_router_and_forgets_nothing(trained, tmp_path):
    method = _method({"routing": "oracle"})
    _run(method, trained["root"], trained["exps"], trained["test"], run_dir=tmp_path / "oracle")
    assert not any(".router." in n for n, _ in method.model.named_parameters())
    batch = _eval_batch(method, trained["test"], trained["root"])
    batch["tasks"] = ["Fin", "RS", "Fin", "RS", "RS", "Fin"]  # routing must follow the given task
    choice, meta = method.route(method.prepare_batch(batch, training=False), batch)
    assert [method.experts[k]["task"] for k in choice] == batch["tasks"]
    assert all(m["routing"] == "oracle" for m in meta)
    # parameter isolation: expert 1 (and its projector) answers RS identically after task 2 was learned
    first, second = (tmp_path / "oracle" / "stages" / f"{i:03d}" / "predictions" / "RS.jsonl" for i in (0, 1))
    assert first.read_text() == second.read_text()


def test_parameter_counts_match_the_closed_form(trained):
    method = trained["method"]
    base, _ = build_tiny_llava("micro", seed=0)
    shapes = [(m.in_features, m.out_features) for name, m in base.named_modules()
              if name in set(matched_modules(base, lora_target_regex("all_linear")))]
    projector = sum(p.numel() for n, p in base.named_parameters() if "multi_modal_projector" in n)
    assert len(shapes) == 14 and lora_parameters(shapes, 4) == 4 * sum(i + o for i, o in shapes)
    expected = expected_parameters(shapes, n_experts=2, rank=4, router_rank=4, projector=projector)
    assert count_adapter_parameters(method.model)["adapter_total"] == expected["adapter_total"]
    assert method.expected_parameters() == expected
    logs = [s.log for s in trained["stages"]]
    assert logs[0]["adapter_trainable"] == expected["expert"] + projector  # stage 1: no router yet
    assert logs[1]["adapter_trainable"] == expected["stage_trainable"]  # expert 2 + projector + router
    summary = method.parameter_summary()
    assert summary["stored_total"] == expected["stored_total"] and summary["projector_copies"] == 3


def test_save_reload_keeps_routing_decisions_and_answers(trained):
    method, root, test = trained["method"], trained["root"], trained["test"]
    batch = _eval_batch(method, test, root)
    inputs = method.prepare_batch(batch, training=False)
    kwargs = {"max_new_tokens": 4, "do_sample": False, "pad_token_id": 0, "eos_token_id": 3}
    answers, meta = method.generate(inputs, batch, **kwargs)
    restored = _method()
    stage = trained["trainer"].stage_dir(1)
    restored.prepare_for_resume(trained["exps"])
    from cvitkit.adapters import load_adapter_state

    load_adapter_state(restored.model, stage / "adapter.safetensors")
    ContinualTrainer._load_method_state(type("T", (), {"method": restored})(), stage)
    answers2, meta2 = restored.generate(inputs, batch, **kwargs)
    assert meta2 == meta and torch.equal(answers2, answers)
    assert restored.shots.keys() == method.shots.keys()
    assert [r["id"] for r in restored.shots["Fin"]] == [r["id"] for r in method.shots["Fin"]]


@pytest.mark.quant
def test_experts_and_router_wrap_a_4bit_base(micro_llava_dir, tmp_path):
    from tests.conftest import method_on_4bit

    method, processor = method_on_4bit(micro_llava_dir, "mr_lora", FAST, suite=SUITE)
    exps, _ = _toy_data(tmp_path)
    method.before_experience(exps[0])
    layer = next(m for n, m in method.model.named_modules() if n.endswith("q_proj") and hasattr(m, "lora_A"))
    assert type(layer.base_layer).__name__ == "Linear4bit" and set(layer.lora_A) == {"router", "expert_0"}
    batch = processor(text=["USER: <image>\nQ? ASSISTANT: red</s>"], images=[make_image(32)], return_tensors="pt")
    method.model(**batch, labels=batch["input_ids"]).loss.backward()
    assert layer.lora_B["expert_0"].weight.grad is not None and layer.lora_B["router"].weight.grad is None


@pytest.mark.slow
def test_smoke_run_end_to_end_and_resume_repeats_the_last_stage(micro_smoke_profile):
    """run_method on MLLM-CL ACL (micro model, a few samples); the last stage redone from a resume."""
    import json
    import shutil

    from cvitkit.runner import run_method

    profile = micro_smoke_profile()
    overrides = {"router_shots": 4, "router_epochs": 2, "router_epochs_by_shots": False, "router_max_new_tokens": 4}
    result = run_method(profile, "mllmcl_acl", "mr_lora", overrides=overrides, force=True, log=lambda *_: None)
    assert result.matrix.shape == (4, 4)
    stages = sorted((result.run_dir / "stages").iterdir())
    last = stages[-1]
    stats = json.loads((last / "statistics.json").read_text())
    assert set(stats["router_accuracy"]) == set(result.matrix.columns) | {"overall"}
    assert [e["letter"] for e in stats["experts"]] == ["A", "C", "B", "D"]  # OCR, Math, VP, GUI (suite letters)
    assert stats["router_training"]["samples"] == 16 and len(stats["expert_usage"]["router"]) == 4
    trainable = [json.loads((s / "stage.json").read_text())["log"]["adapter_trainable"] for s in stages]
    assert trainable[0] < trainable[1] == trainable[-1]  # the router trains from stage 2 on
    predictions = (last / "predictions" / "GUI.jsonl").read_text()
    shutil.rmtree(last)
    again = run_method(profile, "mllmcl_acl", "mr_lora", overrides=overrides, log=lambda *_: None)
    assert (last / "predictions" / "GUI.jsonl").read_text() == predictions  # same routing and outputs
    assert json.loads((last / "statistics.json").read_text())["router_accuracy"] == stats["router_accuracy"]
    assert again.matrix.equals(result.matrix)
