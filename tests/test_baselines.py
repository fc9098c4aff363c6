"""Mechanisms of the baselines, each checked against numbers computed by hand."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from cvitkit.errors import ConfigError
from cvitkit.lm_loss import answer_logits
from cvitkit.methods.base import available_methods, build_method
from cvitkit.methods.ewc import ewc_penalty
from cvitkit.methods.lwf import distillation_loss
from cvitkit.methods.olora import orthogonality_loss
from cvitkit.methods.replay import ReplayBuffer


def test_registry_lists_the_baselines_and_rejects_unknown_names():
    assert {"zero_shot", "lora_ft", "multitask", "replay", "ewc", "lwf", "olora", "moelora", "smolora"} <= set(
        available_methods())
    with pytest.raises(ConfigError, match="unknown method 'lora-ft'.*lora_ft"):
        build_method("lora-ft")


def test_presets_and_strict_overrides():
    paper = build_method("moelora", "paper").config
    mini = build_method("moelora", "mini").config
    assert (paper.n_experts, paper.rank, paper.alpha, paper.lr) == (8, 128, 256, 2e-4)  # CoIN release
    assert mini.rank < paper.rank and mini.alpha / mini.rank == paper.alpha / paper.rank
    assert build_method("ewc", "mini", {"ewc_lambda": 5.0}).config.ewc_lambda == 5.0
    with pytest.raises(ConfigError, match="unknown key 'ewc_lamda'.*Did you mean 'ewc_lambda'"):
        build_method("ewc", "mini", {"ewc_lamda": 5.0})


def test_ewc_penalty_matches_hand_computation():
    params = {"a": torch.tensor([1.0, 2.0]), "b": torch.tensor([[0.5]])}
    anchor = {"a": torch.tensor([0.0, 1.0]), "b": torch.tensor([[1.5]])}
    fisher = {"a": torch.tensor([2.0, 3.0]), "b": torch.tensor([[4.0]])}
    # λ/2 · (2·1² + 3·1² + 4·(−1)²) = 0.5 · 0.5 · 9 with λ = 0.5
    assert ewc_penalty(params, anchor, fisher, 0.5).item() == pytest.approx(2.25)
    assert ewc_penalty(params, params, fisher, 1.0).item() == 0.0


def test_ewc_fisher_is_the_lm_gradient_alone():
    """before_optimizer_step removes the penalty's closed-form gradient λF(θ−θ*) from the total."""
    method = build_method("ewc", "mini", {"ewc_lambda": 2.0})
    p = torch.nn.Parameter(torch.tensor([1.0, -1.0]))
    method.model = torch.nn.Module()
    method.model.register_parameter("w", p)
    method.fisher, method.anchor = {"w": torch.tensor([0.5, 1.0])}, {"w": torch.tensor([0.0, 0.0])}
    method._grad_sq, method._steps = {"w": torch.zeros(2)}, 0
    lm_grad = torch.tensor([0.3, 0.4])
    p.grad = lm_grad + 2.0 * method.fisher["w"] * (p.detach() - method.anchor["w"])
    method.before_optimizer_step()
    torch.testing.assert_close(method._grad_sq["w"], lm_grad ** 2)


def test_lwf_term_is_zero_when_teacher_equals_student_and_positive_otherwise():
    torch.manual_seed(0)
    rows = torch.randn(4, 11)  # logits at 4 supervised positions
    assert distillation_loss(rows, rows.clone(), 2.0).item() == pytest.approx(0.0, abs=1e-6)
    assert distillation_loss(rows, torch.randn(4, 11), 2.0).item() > 0.01


def test_lwf_term_matches_a_hand_computation():
    student, teacher, temperature = torch.tensor([[0.0, 2.0]]), torch.tensor([[2.0, 0.0]]), 2.0
    p = torch.softmax(teacher / temperature, -1)
    q = torch.softmax(student / temperature, -1)
    expected = temperature ** 2 * float((p * (p / q).log()).sum())
    assert distillation_loss(student, teacher, temperature).item() == pytest.approx(expected, rel=1e-6)


def test_lwf_term_only_looks_at_answer_positions():
    torch.manual_seed(0)
    student, teacher = torch.randn(1, 5, 7), torch.randn(1, 5, 7)
    labels = torch.tensor([[-100, -100, -100, 2, 3]])  # positions 2 and 3 predict the answer tokens
    teacher2 = teacher.clone()
    teacher2[:, 0] += 10  # a change at a prompt position must not matter
    rows = [answer_logits(SimpleNamespace(logits=t), {"labels": labels}) for t in (student, teacher, teacher2)]
    assert rows[0].shape == (2, 7)
    assert distillation_loss(rows[0], rows[1], 1.0) == distillation_loss(rows[0], rows[2], 1.0)


def test_olora_orthogonality_is_zero_for_orthogonal_subspaces():
    basis = torch.eye(6)
    old, new = basis[:2], basis[2:4]
    assert orthogonality_loss([old], new).item() == 0.0
    # ‖A_old A_newᵀ‖²_F by hand: rows e0, e1 vs rows (e0+e2)/√2, e3 → one entry 1/√2 → 0.5
    overlapping = torch.stack([(basis[0] + basis[2]) / 2 ** 0.5, basis[3]])
    assert orthogonality_loss([old], overlapping).item() == pytest.approx(0.5)


def test_replay_buffer_keeps_its_size_and_task_balance():
    records = {t: [{"id": f"{t}{i}", "task": t} for i in range(50)] for t in "ABC"}
    buf = ReplayBuffer("per_task", per_task=7, size=0, seed=0)
    for t in "ABC":
        buf.add(records[t], t)
    tasks = [r["task"] for r in buf.records]
    assert len(tasks) == 21 and {t: tasks.count(t) for t in "ABC"} == {"A": 7, "B": 7, "C": 7}
    again = ReplayBuffer("per_task", per_task=7, size=0, seed=0)
    for t in "ABC":
        again.add(records[t], t)
    assert [r["id"] for r in again.records] == [r["id"] for r in buf.records]  # seeded


def test_reservoir_buffer_is_bounded_and_roughly_uniform():
    stream = [{"id": str(i), "task": "early" if i < 500 else "late"} for i in range(1000)]
    counts = []
    for seed in range(20):
        buf = ReplayBuffer("reservoir", per_task=0, size=50, seed=seed)
        for i in range(0, 1000, 100):
            buf.add(stream[i:i + 100], None)
        assert len(buf.records) == 50
        counts.append(sum(r["task"] == "early" for r in buf.records))
    assert 20 <= sum(counts) / len(counts) <= 30  # half of the stream is "early"


def test_replay_buffer_state_round_trip():
    records = [{"id": str(i), "task": "A"} for i in range(30)]
    buf = ReplayBuffer("reservoir", per_task=0, size=10, seed=3)
    buf.add(records[:20], None)
    restored = ReplayBuffer("reservoir", per_task=0, size=10, seed=99)
    restored.load(buf.state(), {r["id"]: r for r in records})
    buf.add(records[20:], None)
    restored.add(records[20:], None)
    assert [r["id"] for r in restored.records] == [r["id"] for r in buf.records]
