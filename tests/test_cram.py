"""CRAM mechanisms, each checked against numbers: SVD instantiation, pools, RBF routing, phases,
orthogonality penalty, freezing, parameter counts and the save → reload → resume round trip."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from peft import get_peft_model
from torch import nn

from cvitkit.adapters import count_adapter_parameters, mixture_layers
from cvitkit.adapters.cram import (
    CramLoraConfig,
    CramState,
    instantiate_from_buffer,
    orthogonality_energy,
)
from cvitkit.bench import train_step
from cvitkit.methods.base import build_method
from cvitkit.methods.cram import cram_parameter_count, lora_parameter_count
from cvitkit.models import lora_target_regex
from cvitkit.routers import RoutingContext
from cvitkit.routers.cram import SemanticPools, rbf_weights
from tests.conftest import make_image


# -- pure functions ---------------------------------------------------------------------------------------
def _low_rank_buffer(sigmas, d_in=16, d_out=12, R=8, scaling=2.0, seed=0):
    """A buffer whose update s·B·A is exactly U diag(sigmas) Vᵀ (returns the factors too)."""
    g = torch.Generator().manual_seed(seed)
    U, _ = torch.linalg.qr(torch.randn(d_out, len(sigmas), generator=g, dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(d_in, len(sigmas), generator=g, dtype=torch.float64))
    A = torch.randn(R, d_in, generator=g, dtype=torch.float64)
    A[: len(sigmas)] = V.t()
    B = torch.zeros(d_out, R, dtype=torch.float64)
    B[:, : len(sigmas)] = U * torch.tensor(sigmas, dtype=torch.float64) / scaling
    return A, B, U, V


@pytest.mark.parametrize("rank_min,rank_max,expected", [(2, 5, 3), (4, 6, 4), (1, 2, 2)])
def test_svd_rank_selection_recovers_a_known_rank(rank_min, rank_max, expected):
    A, B, _, _ = _low_rank_buffer([3.0, 2.0, 1.0])
    inst = instantiate_from_buffer(A, B, 2.0, tau_alloc=0.5, rank_min=rank_min, rank_max=rank_max)
    assert inst.singular_values[:3] == pytest.approx([3.0, 2.0, 1.0], abs=1e-9)
    assert max(inst.singular_values[3:]) < 1e-9
    assert len(inst.candidates) == min(3, rank_max)  # three directions above tau_alloc, capped at r_max
    assert inst.rank == expected and inst.A.shape == (expected, 16) and inst.B.shape == (12, expected)
    # relative threshold: sigma_i / sigma_1 = 1, 2/3, 1/3 → 0.3 keeps all three, 0.5 keeps two
    assert len(instantiate_from_buffer(A, B, 2.0, tau_alloc=0.3, tau_mode="relative", rank_max=8).candidates) == 3
    assert len(instantiate_from_buffer(A, B, 2.0, tau_alloc=0.5, tau_mode="relative", rank_max=8).candidates) == 2
    # nothing above the threshold → the top direction alone (then r_min fills up)
    assert instantiate_from_buffer(A, B, 2.0, tau_alloc=10.0, rank_min=1).candidates == [0]


@pytest.mark.parametrize("compensate", [True, False])
def test_instantiated_expert_reproduces_the_truncated_buffer_update(compensate):
    A, B, U, V = _low_rank_buffer([3.0, 2.0, 1.0, 0.5])
    s = 2.0
    inst = instantiate_from_buffer(A, B, s, tau_alloc=0.8, rank_min=1, rank_max=8, compensate_scaling=compensate)
    assert inst.selected == [0, 1, 2]  # 0.5 is below tau_alloc
    truncated = U[:, :3] @ torch.diag(torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64)) @ V[:, :3].t()
    expert_update = s * inst.B @ inst.A  # the expert is used with the same scaling s
    # compensate_scaling: exactly the truncated ΔW; literal reading: s times it (reference pitfall 6)
    torch.testing.assert_close(expert_update, truncated * (1.0 if compensate else s), rtol=1e-9, atol=1e-9)
    # balanced factors: B = U√Σ', A = √Σ'Vᵀ
    torch.testing.assert_close(inst.B.norm(dim=0), inst.A.norm(dim=1), rtol=1e-9, atol=1e-9)


def test_novelty_filter_drops_a_direction_already_in_the_pool():
    A, B, U, V = _low_rank_buffer([3.0, 2.0, 1.0])
    other = V[:, :1].t().clone()  # a pool expert whose row space is the top right-singular vector
    inst = instantiate_from_buffer(A, B, 2.0, [other], tau_alloc=0.5, tau_novel=0.99, rank_min=2, rank_max=4)
    assert inst.novelty[0] == pytest.approx(0.0, abs=1e-9) and min(inst.novelty[1:3]) == pytest.approx(1.0)
    assert inst.candidates == [0, 1, 2] and inst.kept == [1, 2] and inst.rank == 2
    assert (inst.A @ V[:, 0]).abs().max() < 1e-9  # the new expert's input directions avoid the pool's
    # novelty filter off: the spanned direction is kept
    off = instantiate_from_buffer(A, B, 2.0, [other], tau_alloc=0.5, novelty_filter=False, rank_min=2, rank_max=4)
    assert off.rank == 3
    # a pool direction at 45° to v_0: α_0 = ‖v_0 − QQᵀv_0‖ = sin 45° = 1/√2
    full, _ = torch.linalg.qr(torch.cat([V, torch.randn(16, 1, dtype=torch.float64)], 1))
    w = full[:, 3]  # orthogonal to v_0, v_1, v_2
    tilted = ((V[:, 0] + w) / 2 ** 0.5).unsqueeze(0)
    inst = instantiate_from_buffer(A, B, 2.0, [tilted], tau_alloc=0.5, tau_novel=0.99, rank_min=1, rank_max=4)
    assert inst.novelty[0] == pytest.approx(2 ** -0.5, abs=1e-9) and inst.kept == [1, 2]


def test_orthogonality_energy_is_zero_for_orthogonal_updates_and_positive_otherwise():
    d = 8
    Q = torch.eye(d)[:, :2]  # historical basis: e0, e1
    h = torch.randn(5, d)
    A = torch.randn(3, d)
    B = torch.zeros(d, 3)
    B[2:5] = torch.eye(3)  # outputs in span(e2, e3, e4) ⟂ Q
    gamma = torch.rand(5)
    assert orthogonality_energy(h, A, B, 2.0, Q, gamma).item() == pytest.approx(0.0, abs=1e-12)
    B[0, 0] = 1.0  # leak into e0
    z = 2.0 * (h @ A.t()) @ B.t()
    expected = (gamma * z[:, 0] ** 2).mean()  # ‖Qᵀz‖² = z_0² + z_1² and z_1 = 0
    assert orthogonality_energy(h, A, B, 2.0, Q, gamma).item() == pytest.approx(expected.item(), rel=1e-5)
    assert expected.item() > 0


def test_pool_assignment_follows_the_thresholds():
    e = torch.eye(4)
    pools = SemanticPools(max_groups=3, delta_threshold=0.1, join_threshold=0.8)
    assert pools.decide(e[0]).pool == 0  # G = 0
    pools.join(0, "a", 0)
    pools.update(0, e[0])
    near = e[0] + 0.3 * e[1]  # cos = 0.958 > 0.8 → join the only pool
    far = e[0] + 1.0 * e[1]  # cos = 0.707 ≤ 0.8 → new pool
    assert pools.decide(near).pool == 0 and pools.decide(far).pool == 1
    pools.join(1, "b", 1)
    pools.update(1, e[1])
    # G = 2: cosines (0.949, 0.316): margin 0.63 > θ → the best pool; (0.707, 0.707): ambiguous → new pool
    assert pools.decide(3 * e[0] + e[1]).pool == 0
    d = pools.decide(e[0] + e[1])
    assert d.pool == 2 and "ambiguous" in d.rule and d.similarities == pytest.approx([0.707107, 0.707107])
    # margin 0.099 ≤ θ still opens a pool; once the cap is reached the best pool is joined instead
    capped = SemanticPools(max_groups=2)
    capped.prototypes, capped.counts = [e[0], e[1]], [1, 1]
    assert capped.decide(e[0] + 0.9 * e[1]).pool == 0
    # prototypes are running means; inference routes by the largest cosine
    pools.update(0, e[2])
    torch.testing.assert_close(pools.prototypes[0], (e[0] + e[2]) / 2)
    assert pools.route(e[1] + 0.1 * e[0]) == 1 and pools.route(e[2]) == 0


def test_rbf_routing_weights_equal_the_formula():
    c = torch.tensor([0.2, -0.1, 0.4])
    mu = torch.tensor([[0.0, 0.0, 0.0], [0.2, -0.1, 0.5], [1.0, 1.0, 1.0]])
    sigma = 0.5
    logits = torch.tensor([-(c - m).pow(2).sum().item() / (2 * sigma ** 2) for m in mu])
    expected = logits.exp() / logits.exp().sum()
    torch.testing.assert_close(rbf_weights(c, mu, sigma), expected)
    torch.testing.assert_close(rbf_weights(c, mu, sigma, "uniform"), torch.full((3,), 1 / 3))
    per_sample = rbf_weights(torch.stack([c, mu[2]]), mu, sigma)
    assert per_sample.shape == (2, 3) and per_sample[1].argmax() == 2


# -- the layer ----------------------------------------------------------------------------------------------
class _Toy(nn.Module):
    def __init__(self, d=16):
        super().__init__()
        self.language_model = nn.Module()
        self.language_model.layers = nn.ModuleList([nn.Module()])
        self.language_model.layers[0].q_proj = nn.Linear(d, d, bias=False)

    def forward(self, x):
        return self.language_model.layers[0].q_proj(x)


def _toy_layer(slots=4, R=8, alpha=16, feat=3, sigma=0.5, routing="centroid_rbf"):
    torch.manual_seed(0)
    cfg = CramLoraConfig(r=R, lora_alpha=alpha, lora_dropout=0.0, target_modules=lora_target_regex(["q_proj"]),
                         mixture={"n_experts": 1, "router": "cram_centroid", "a_init_std": None,
                                  "router_kwargs": {"max_slots": slots, "feature_dim": feat, "sigma": sigma,
                                                    "routing": routing}})
    model = get_peft_model(_Toy(), cfg)
    layer = mixture_layers(model)[0]
    ctx, state = RoutingContext(), CramState()
    ctx.extras["cram"] = state
    layer.routing_context = ctx
    with torch.no_grad():
        layer.lora_buffer_B["default"].normal_(std=0.1)
        for k, centre in enumerate(torch.eye(feat)[:slots]):
            layer.centroid(k).copy_(centre)
    for k in range(2):
        layer.begin_slot(k, 4)
        layer.set_expert(k, torch.randn(2 + k, 16), torch.randn(16, 2 + k))
    return model, layer, state


def test_warmup_uses_only_the_buffer_and_the_stable_phase_only_pool_experts():
    model, layer, state = _toy_layer()
    x = torch.randn(2, 5, 16)
    W0, s = layer.base_layer.weight, layer.scaling["default"]
    assert s == 2.0
    A_buf, B_buf = layer.lora_buffer_A["default"], layer.lora_buffer_B["default"]
    state.phase = "off"
    torch.testing.assert_close(model(x), x @ W0.t())
    state.phase = "warmup"
    torch.testing.assert_close(model(x), x @ W0.t() + s * (x @ A_buf.t()) @ B_buf.t())
    state.phase, state.pool_slots, state.batch_feature = "mixture", [0, 1], torch.tensor([0.9, 0.2, 0.0])
    c, mu = state.batch_feature, torch.eye(3)[:2]
    pi = torch.softmax(-(c - mu).pow(2).sum(-1) / (2 * 0.5 ** 2), 0)
    expected = x @ W0.t()
    for k in range(2):
        A, B = layer.expert(k)
        assert A.shape[0] == 2 + k  # variable rank per slot
        expected = expected + s * pi[k] * (x @ A.t()) @ B.t()
    out = model(x)
    torch.testing.assert_close(out, expected)
    with torch.no_grad():
        B_buf.mul_(10)  # the buffer takes no part in the stable phase
    torch.testing.assert_close(model(x), out)
    state.pool_slots = [1]  # experts of other pools are not used: slot 1 alone gets weight 1
    A, B = layer.expert(1)
    torch.testing.assert_close(model(x), x @ W0.t() + s * (x @ A.t()) @ B.t())


def test_finalize_shrinks_slots_and_reload_restores_variable_shapes():
    model, layer, state = _toy_layer()
    layer.finalize_slot(0)
    layer.finalize_slot(1)
    assert layer.lora_A["default"][0].shape == (2, 16) and layer.lora_B["default"][1].shape == (16, 3)
    assert layer.ranks() == [2, 3, 0, 0]
    sd = {k: v.clone() for k, v in model.state_dict().items() if "lora_" in k}
    fresh, fresh_layer, _ = _toy_layer()
    for k in range(2):
        fresh_layer.begin_slot(k, 4)  # different shapes before loading
    fresh.load_state_dict(sd, strict=False)
    assert fresh_layer.ranks() == [2, 3, 0, 0]
    for k in range(2):
        torch.testing.assert_close(fresh_layer.expert(k)[0], layer.expert(k)[0])


def test_orthogonality_penalty_in_the_layer_uses_image_positions_and_routing_mass():
    model, layer, state = _toy_layer(sigma=1.0)
    e = torch.eye(16)
    with torch.no_grad():  # history slot 0: A rows e0, e1 (square layer → the A row space is the basis)
        layer.lora_A["default"][0][:2] = e[:2]
        layer.lora_A["default"][1][:3] = torch.randn(3, 16)
        layer.lora_B["default"][1].zero_()
        layer.lora_B["default"][1][5:8, :3] = torch.eye(3)  # new expert writes to e5..e7 ⟂ basis
    x = torch.randn(2, 4, 16)
    mask = torch.tensor([[True, True, False, False], [False, True, True, True]])
    v = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    state.phase, state.pool_slots, state.current, state.history = "mixture", [0, 1], 1, [0]
    state.batch_feature, state.sample_features, state.image_mask, state.penalty = v.mean(0), v, mask, True
    model(x)
    assert len(layer.routing_context.aux_losses) == 1 and layer.routing_context.aux_losses[0].item() == 0.0
    layer.routing_context.aux_losses.clear()
    with torch.no_grad():
        layer.lora_B["default"][1][0, 0] = 1.0  # leak into e0
    model(x)
    h = torch.stack([x[0, :2].mean(0), x[1, 1:].mean(0)])
    A, B = layer.expert(1)
    z = 2.0 * (h @ A.t()) @ B.t()
    gamma = torch.softmax(-(v.unsqueeze(1) - torch.eye(3)[:2]).pow(2).sum(-1) / 2.0, -1)[:, 0]
    expected = (gamma * (z[:, 0] ** 2 + z[:, 1] ** 2)).mean()
    assert layer.routing_context.aux_losses[0].item() == pytest.approx(expected.item(), rel=1e-5) and expected > 0


# -- the method on the micro model ----------------------------------------------------------------------
COLOURS = {"A": ("red", "What colour is the square? Answer with one word.", "red"),
           "B": ("blue", "Describe the picture in a full sentence please.", "a blue square on white")}


def _records(task, n=8):
    colour, q, a = COLOURS[task]
    return [{"id": f"{task}{i}", "task": task, "image": "x.png", "pil_image": make_image(32, colour),
             "conversations": [{"from": "human", "value": "<image>\n" + q}, {"from": "gpt", "value": a}]}
            for i in range(n)]


def _experience(index, task):
    from cvitkit.data.streams import Experience

    return Experience(index=index, task_name=task, task_id=index, records=_records(task), is_first=index == 0,
                      is_last=False)


@pytest.fixture()
def micro(micro_llava):
    """A private copy of the shared micro model (the method adapts it in place) and its processor."""
    return lambda: (copy.deepcopy(micro_llava[0]), micro_llava[1])


def _method(micro, overrides=None):
    model, processor = micro()
    for p in model.parameters():
        p.requires_grad_(False)
    ov = {"max_slots": 3, "max_groups": 3, "rank_max": 3, "rank_min": 2, "buffer_rank": 8, "buffer_alpha": 16,
          "visual_warmup_ratio": 0.3, **(overrides or {})}
    method = build_method("cram", "mini", ov)
    method.setup(model, processor)
    return method, processor


def _train(method, processor, experience, steps=3):
    from cvitkit.data import TrainCollator
    from cvitkit.train import experience_seed, seed_everything

    seed_everything(experience_seed(0, experience.index))
    collate = TrainCollator(processor)
    method.before_experience(experience)
    optimizer = torch.optim.AdamW(method.param_groups())
    method.before_training(experience, steps)
    for i in range(steps):
        train_step(method, optimizer, collate(experience.records[2 * i: 2 * i + 2]))
    method.after_experience(experience, experience.records)


def _eval_weights(method, processor, task):
    from cvitkit.data import EvalCollator

    items = [{"question_id": i, "text": COLOURS[task][1], "answer": COLOURS[task][2], "image": "x.png",
              "pil_image": make_image(32, COLOURS[task][0]), "task": task} for i in range(2)]
    batch = EvalCollator(processor)(items)
    inputs = method.prepare_batch(batch, training=False)
    with torch.no_grad():
        logits = method.model(**inputs).logits
    return {k: v.clone() for k, v in method.cram.weights.items()}, logits, list(method.cram.pool_slots)


def test_old_experts_and_centroids_stay_frozen_and_counts_match_closed_form(micro):
    method, processor = _method(micro)
    _train(method, processor, _experience(0, "A"))
    layers = method.layers()
    old = {id(layer): [t.detach().clone() for t in (*layer.expert(0), layer.centroid(0))] for layer in layers}
    counts = count_adapter_parameters(method.model)
    projector = sum(p.numel() for n, p in method.model.named_parameters() if "multi_modal_projector" in n)
    dims, ranks = method.layer_dims(), [layer.ranks() for layer in layers]
    closed = cram_parameter_count(dims, ranks, 8, method.feature_dim, 3, current=0)
    assert counts["adapter_total"] == closed["total"] + projector
    assert counts["adapter_trainable"] == closed["trainable"] + projector
    assert closed["experts"] == sum(r * (i + o) for (i, o), row in zip(dims, ranks) for r in row)
    assert all(2 <= layer.ranks()[0] <= 3 for layer in layers)
    assert lora_parameter_count(dims, 3) == sum(3 * (i + o) for i, o in dims)

    method.before_experience(_experience(1, "B"))
    for layer in layers:
        assert not any(p.requires_grad for p in (layer.lora_A["default"][0], layer.lora_B["default"][0],
                                                 layer.centroid(0)))
        assert layer.lora_A["default"][1].requires_grad and layer.lora_A["default"][1].shape == (3, layer.in_features)
    _train(method, processor, _experience(1, "B"))
    for layer in layers:
        for before, now in zip(old[id(layer)], (*layer.expert(0), layer.centroid(0))):
            assert torch.equal(before, now) and now.grad is None
        assert layer.ranks()[1] >= 2 and not layer.lora_buffer_A["default"].requires_grad
    closed = cram_parameter_count(dims, [layer.ranks() for layer in layers], 8, method.feature_dim, 3, current=1)
    assert count_adapter_parameters(method.model)["adapter_trainable"] == closed["trainable"] + projector
    stats = method.statistics()
    assert set(stats["ranks"]) == {layer.layer_name for layer in layers} and stats["budget_charge"].keys() == {"0", "1"}
    assert stats["parameters"]["tasks"] == 2


def test_warmup_schedule_and_the_transition_step(micro):
    method, processor = _method(micro, {"visual_warmup_ratio": 0.5})
    exp = _experience(0, "A")
    method.before_experience(exp)
    method.before_training(exp, 4)
    assert method._n_warm == 2
    method.before_training(exp, 1)
    assert method._n_warm == 1  # at least one step
    method, _ = _method(micro, {"visual_warmup_ratio": 0.01})
    method.before_experience(exp)
    method.before_training(exp, 4)
    assert method._n_warm == 1


def test_save_reload_resume_keeps_pools_ranks_and_routing_identical(tmp_path, micro):
    from cvitkit.adapters import load_adapter_state, save_adapter_state

    method, processor = _method(micro)
    _train(method, processor, _experience(0, "A"))
    _train(method, processor, _experience(1, "B"))
    save_adapter_state(method.model, tmp_path / "adapter.safetensors")
    tensors, meta = method.state()
    before = {t: _eval_weights(method, processor, t) for t in "AB"}

    again, processor2 = _method(micro)
    again.prepare_for_resume([_experience(0, "A"), _experience(1, "B")])
    load_adapter_state(again.model, tmp_path / "adapter.safetensors")
    again.load_state({k: v.clone() for k, v in tensors.items()}, meta)
    assert again.pools.slots == method.pools.slots and again.task_pool == method.task_pool
    assert [lay.ranks() for lay in again.layers()] == [lay.ranks() for lay in method.layers()]
    for t in "AB":
        w1, logits1, slots1 = before[t]
        w2, logits2, slots2 = _eval_weights(again, processor2, t)
        assert slots1 == slots2 and w1.keys() == w2.keys()
        for k in w1:
            torch.testing.assert_close(w1[k], w2[k], rtol=0, atol=0)
        torch.testing.assert_close(logits1, logits2)
    # resume: the next task trains identically on the original and the reloaded method
    _train(method, processor, _experience(2, "A"))
    _train(again, processor2, _experience(2, "A"))
    assert again.task_pool == method.task_pool and again.pools.slots == method.pools.slots
    assert [lay.ranks() for lay in again.layers()] == [lay.ranks() for lay in method.layers()]
    w1, l1, _ = _eval_weights(method, processor, "A")
    w2, l2, _ = _eval_weights(again, processor2, "A")
    torch.testing.assert_close(l1, l2)
    assert all(torch.allclose(w1[k], w2[k]) for k in w1)


def test_variants_switch_their_component(micro):
    method, processor = _method(micro, {"adaptive_rank": False, "routing": "uniform", "dec_lambda": 0.0,
                                 "use_pools": False})
    _train(method, processor, _experience(0, "A"))
    _train(method, processor, _experience(1, "B"))
    assert all(layer.ranks()[:2] == [3, 3] for layer in method.layers())  # fixed r_max experts
    assert method.pools.slots == [[0, 1]]  # one pool
    weights, _, _ = _eval_weights(method, processor, "B")
    assert all(torch.allclose(w, torch.full((2,), 0.5)) for w in weights.values())  # uniform in the pool
    from cvitkit.experiments import resolve_run

    assert resolve_run("cram__no_orth").overrides == {"dec_lambda": 0.0}
    assert {resolve_run(f"cram__{v}").variant for v in ("no_adaptive_rank", "no_centroid", "no_pools")} == {
        "no_adaptive_rank", "no_centroid", "no_pools"}


def test_paper_defaults_and_mini_preset():
    from cvitkit.data import load_suite

    ucit = build_method("cram", "paper", suite=load_suite("ucit")).config
    trigap = build_method("cram", "paper", suite=load_suite("trigap")).config
    assert (ucit.rank_max, ucit.max_groups, trigap.rank_max, trigap.max_groups) == (9, 5, 10, 10)
    assert (ucit.delta_threshold, ucit.rbf_sigma, ucit.svd_tau_alloc, ucit.svd_tau_novel) == (0.1, 2.0, 0.08, 0.99)
    assert (ucit.visual_warmup_ratio, ucit.buffer_rank, ucit.buffer_alpha, ucit.rank_min) == (0.05, 48, 96, 4)
    assert (ucit.max_slots, ucit.dec_lambda, ucit.lr, ucit.projector_lr, ucit.targets) == (10, 1.0, 2e-4, 2e-5,
                                                                                           "attention")
    mini = build_method("cram", "mini", suite=load_suite("ucit")).config
    assert (mini.buffer_rank, mini.buffer_alpha, mini.rank_min, mini.rank_max) == (16, 32, 2, 4)
    assert mini.buffer_alpha / mini.buffer_rank == ucit.buffer_alpha / ucit.buffer_rank == 2
    assert math.isclose(mini.rank, 16)


@pytest.mark.quant
def test_cram_on_a_4bit_base(micro_llava_dir):
    from tests.conftest import method_on_4bit

    method, processor = method_on_4bit(micro_llava_dir, "cram", {"max_slots": 2, "rank_max": 3, "buffer_rank": 8,
                                                                 "buffer_alpha": 16, "visual_warmup_ratio": 0.5})
    assert type(method.layers()[0].base_layer).__name__ == "Linear4bit"
    _train(method, processor, _experience(0, "A"), steps=2)
    assert all(2 <= layer.ranks()[0] <= 3 for layer in method.layers())
    weights, logits, slots = _eval_weights(method, processor, "A")
    assert slots == [0] and torch.isfinite(logits).all() and len(weights) == len(method.layers())


@pytest.mark.slow
def test_smoke_run_end_to_end_and_resume_repeats_the_last_stage(micro_smoke_profile):
    """run_method on UCIT (micro model, a few samples); then the last stage is redone from a resume."""
    import json
    import shutil

    from cvitkit.runner import run_method

    profile = micro_smoke_profile(batch_size=2)
    result = run_method(profile, "ucit", "cram", force=True, log=lambda *_: None)
    assert result.matrix.shape == (6, 6)
    stages = sorted((result.run_dir / "stages").iterdir())
    last = stages[-1]
    stats = json.loads((last / "statistics.json").read_text())
    assert set(stats["pool_accuracy"]) == set(result.matrix.columns) | {"overall"}
    assert all(sum(r > 0 for r in ranks) == 6 for ranks in stats["ranks"].values())
    assert all(2 <= r <= 4 for ranks in stats["ranks"].values() for r in ranks if r)
    log = json.loads((last / "stage.json").read_text())["log"]
    assert log["adapter_trainable"] > 0 and log["step_seconds_median"] > 0
    predictions = (last / "predictions" / "Flickr30k.jsonl").read_text()
    shutil.rmtree(last)
    again = run_method(profile, "ucit", "cram", log=lambda *_: None)
    assert (last / "predictions" / "Flickr30k.jsonl").read_text() == predictions  # same routing and outputs
    redone = json.loads((last / "statistics.json").read_text())
    assert redone["ranks"] == stats["ranks"] and redone["pools"] == stats["pools"]
    assert again.matrix.equals(result.matrix)
