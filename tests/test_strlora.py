"""StrLoRA mechanisms, each checked against numbers: two-stage routing, straight-through gradients, the EMA
regulariser, the chunk schedule and router freezing, parameter counts, and state round trips."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from cvitkit.adapters.state import count_adapter_parameters, load_adapter_state, save_adapter_state
from cvitkit.methods.base import PROJECTOR, build_method
from cvitkit.methods.strlora import router_freeze_chunk
from cvitkit.routers import RoutingContext
from cvitkit.routers.strlora import StrLoRARouter, bilinear_logits, router_kl

E, D_IN, D_TE = 4, 12, 10


def _router(**kwargs) -> StrLoRARouter:
    torch.manual_seed(0)
    spec = {"in_features": D_IN, "n_experts": E, "text_dim": D_TE, "top_k": 2, "sub_top_k": 1, "attn_proj_dim": 6}
    spec.update(kwargs)
    return StrLoRARouter(**spec)


def _inputs(b=5, t=7, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, t, D_IN, generator=g), torch.randn(b, D_TE, generator=g)


def _ctx(text, **extras) -> RoutingContext:
    return RoutingContext(sample_embedding=text, extras=dict(extras))


# -- routing ------------------------------------------------------------------------------------
@pytest.mark.parametrize("n_experts,top_k", [(4, 2), (8, 3)])
def test_stage1_selects_exactly_k_and_stage2_one_expert_inside_the_subset(n_experts, top_k):
    router = _router(n_experts=n_experts, top_k=top_k)
    x, text = _inputs()
    st1, mask = router.stage1(text)
    assert mask.sum(-1).tolist() == [top_k] * 5
    # the selected experts are the k most probable ones, and p̂ is renormalised over them
    probs = torch.softmax(text @ router.text_router.t(), -1)
    assert torch.equal(mask, probs >= probs.topk(top_k, -1).values[:, -1:])
    torch.testing.assert_close(st1.sum(-1), torch.ones(5))
    gates = router(x, _ctx(text))
    assert gates.shape == (5, 7, n_experts)
    assert ((gates != 0).sum(-1) == 1).all()  # hard top-1 per token
    chosen = gates.argmax(-1)
    assert mask.gather(1, chosen).all()  # inside the stage-1 subset
    torch.testing.assert_close(gates.sum(-1), torch.ones(5, 7))  # weight exactly 1 (straight-through forward)


def test_bilinear_logits_match_the_equation():
    torch.manual_seed(0)
    h, text = torch.randn(2, 3, D_IN), torch.randn(2, D_TE)
    W_q, W_k, P = torch.randn(6, D_IN), torch.randn(6, D_TE), torch.randn(E, 6)
    ln = (text - text.mean(-1, keepdim=True)) / torch.sqrt(text.var(-1, unbiased=False, keepdim=True) + 1e-5)
    expected = torch.empty(2, 3, E)
    for b in range(2):
        k = W_k @ ln[b]
        for i in range(3):
            q = W_q @ h[b, i]
            for e in range(E):
                expected[b, i, e] = (q * k * P[e] / P[e].norm()).sum() / math.sqrt(6)
    torch.testing.assert_close(bilinear_logits(h, text, W_q, W_k, P), expected, rtol=1e-5, atol=1e-5)


def test_prototypes_start_row_normalised_and_no_stage1_router_without_selection():
    router = _router()
    torch.testing.assert_close(router.prototypes.norm(dim=-1), torch.ones(E))
    assert _router(stage1=False).text_router is None and _router(top_k=E).text_router is None
    assert _router(stage2=False).text_router is not None  # the sample-level weights need W_r


@pytest.mark.parametrize("gate", ["straight_through", "product"])
def test_straight_through_gradients_reach_every_router_parameter(gate):
    router = _router(stage1_gate=gate)
    x, text = _inputs()
    target = torch.randn(5, 7, E, generator=torch.Generator().manual_seed(3))
    (router(x, _ctx(text)) * target).sum().backward()
    for name in ("text_router", "query", "key", "prototypes"):
        grad = getattr(router, name).grad
        assert grad is not None and grad.abs().sum() > 1e-6, name


def test_release_mask_gate_gives_w_r_no_gradient_and_same_forward():
    x, text = _inputs()
    st, mask = _router(stage1_gate="straight_through"), _router(stage1_gate="mask")
    target = torch.randn(5, 7, E, generator=torch.Generator().manual_seed(3))
    g_st, g_mask = st(x, _ctx(text)), mask(x, _ctx(text))
    torch.testing.assert_close(g_st, g_mask, rtol=0, atol=1e-6)  # the default keeps the release's forward
    (g_mask * target).sum().backward()
    assert mask.text_router.grad is None and mask.query.grad.abs().sum() > 0
    product = _router(stage1_gate="product")(x, _ctx(text))
    st1, _ = mask.stage1(text)
    torch.testing.assert_close(product, g_mask * st1.detach().unsqueeze(1), rtol=1e-5, atol=1e-6)


def test_straight_through_reaches_routers_through_the_adapted_layer(micro_llava):
    from cvitkit.models import build_tiny_llava

    model, processor = build_tiny_llava("micro")
    method = build_method("strlora", "mini", {"rank": 8, "attn_proj_dim": 4})
    method.setup(model, processor)
    layer = method.layers()[0]
    with torch.no_grad():
        for b in layer.lora_B["default"]:
            b.normal_(std=0.5)  # B = 0 at init would make every gate gradient zero
    x = torch.randn(3, 5, layer.in_features)
    method.context.sample_embedding = torch.randn(3, method.text_dim)
    layer(x).pow(2).sum().backward()
    router = layer.lora_router["default"]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in router.parameters())


def test_linear_token_router_and_no_stage2_gates():
    x, text = _inputs()
    linear = _router(attn_proj_dim=0)
    assert linear.kind == "linear" and set(linear.stage2_parameters()) == {"token_router"}
    assert ((linear(x, _ctx(text)) != 0).sum(-1) == 1).all()
    none = _router(stage2=False)
    gates = none(x, _ctx(text))
    st1, mask = none.stage1(text)
    assert gates.shape == (5, 1, E) and torch.equal(gates[:, 0] > 0, mask)  # sample-level p̂ on every token
    torch.testing.assert_close(gates[:, 0], st1)


# -- regulariser --------------------------------------------------------------------------------
def test_kl_is_zero_for_equal_routers_positive_otherwise_and_ignores_unselected_experts():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, E)
    mask = torch.tensor([[True, True, False, False], [False, True, True, True]]).unsqueeze(1)
    assert router_kl(logits, logits.clone(), mask).abs().max().item() < 1e-7
    teacher = torch.randn(2, 3, E)
    kl = router_kl(logits, teacher, mask)
    assert (kl > 0).all()
    # by hand over the selected experts only
    b, i = 0, 1
    p = torch.softmax(logits[b, i, :2], -1)
    q = torch.softmax(teacher[b, i, :2], -1)
    assert kl[b, i].item() == pytest.approx((q * (q.log() - p.log())).sum().item(), rel=1e-5)
    changed = teacher.clone()
    changed[0, :, 2:] += 100.0  # experts outside sample 0's subset do not count
    torch.testing.assert_close(router_kl(logits, changed, mask)[0], kl[0])


def test_router_adds_lambda_weighted_kl_only_when_asked():
    router = _router()
    router.train()
    x, text = _inputs()
    ctx = _ctx(text, distill_lambda=0.1)
    router(x, ctx)
    assert len(ctx.aux_losses) == 1 and ctx.aux_losses[0].item() == pytest.approx(0.0, abs=1e-7)  # EMA = live
    with torch.no_grad():
        router.query.add_(0.5 * torch.randn_like(router.query))
    ctx = _ctx(text, distill_lambda=0.1)
    router(x, ctx)
    _, mask = router.stage1(text)
    kl = router.distill_loss(x, text, mask)
    assert kl.item() > 0 and ctx.aux_losses[0].item() == pytest.approx(0.1 * kl.item(), rel=1e-6)
    ctx = _ctx(text)  # no lambda: no term
    router(x, ctx)
    assert ctx.aux_losses == []


# -- the method on a micro model ----------------------------------------------------------------
def _method(overrides=None, n_experiences=25, seed=0):
    from cvitkit.models import build_tiny_llava

    model, processor = build_tiny_llava("micro", seed=0)
    torch.manual_seed(seed)
    method = build_method("strlora", "mini", {"attn_proj_dim": 4, **(overrides or {})})
    method.setup(model, processor)
    method.n_experiences = n_experiences
    return method, processor


def _batch(processor, train=True):
    from tests.conftest import qa_batch

    items = [("What colour is the box?", "red", "red"),
             ("Name the colour of the square in this picture.", "blue", "blue"), ("Colour?", "green", "green")]
    return qa_batch(processor, items, train)


def _chunk(index):
    return SimpleNamespace(index=index, task_name=None, task_id=None, records=[])


def _train_step(method, batch):
    method.model.train()
    optimizer = torch.optim.AdamW(method.param_groups())
    inputs = method.prepare_batch(batch, training=True)
    loss, logs = method.compute_loss(inputs, method.model(**inputs), batch)
    loss.backward()
    optimizer.step()
    method.after_step()
    return logs


def test_router_freeze_chunk_formula():
    assert [router_freeze_chunk(n) for n in (25, 20, 15, 5)] == [5, 5, 4, 2]


def test_regulariser_off_in_chunk_one_on_from_chunk_two_with_ema_momentum(micro_llava):
    method, processor = _method()
    batch = _batch(processor)
    method.before_experience(_chunk(0))
    assert not method.distill_active
    logs = _train_step(method, batch)
    assert "router_kl" not in logs and method.context.aux_losses == []
    router = method.routers()[0]
    assert router.ema_ready.item() == 0  # the EMA is not touched in chunk 1
    method.before_experience(_chunk(1))
    assert method.distill_active and router.ema_ready.item() == 1
    torch.testing.assert_close(router.ema_query, router.query.detach())  # initialised from the live router
    old_ema = {n: t.clone() for n, t in router.ema_parameters().items()}
    logs = _train_step(method, batch)
    assert "router_kl" in logs and len(method.context.aux_losses) == len(method.layers())
    beta = method.config.ema_beta
    assert beta == 0.99
    for name, live in router.stage2_parameters().items():
        assert not torch.equal(live.detach(), old_ema[name])  # the optimizer moved the router
        torch.testing.assert_close(router.ema_parameters()[name], beta * old_ema[name] + (1 - beta) * live.detach())


def test_routers_frozen_from_the_stated_chunk(micro_llava):
    method, processor = _method(n_experiences=25)
    batch = _batch(processor)
    method.before_experience(_chunk(3))  # chunk 4: still trained
    assert all(p.requires_grad for r in method.routers() for p in r.parameters())
    method.before_experience(_chunk(4))  # chunk 5 = ceil(0.16·25) + 1
    assert method.routers_frozen and not method.distill_active
    assert not any(p.requires_grad for r in method.routers() for p in r.parameters())
    layer = method.layers()[0]
    assert all(p.requires_grad for p in layer.lora_A["default"])
    before = {n: p.detach().clone() for n, p in method.model.named_parameters() if "lora_router" in n}
    experts_before = layer.lora_B["default"][0].detach().clone()
    _train_step(method, batch)
    after = dict(method.model.named_parameters())
    assert all(torch.equal(after[n], v) for n, v in before.items())
    assert not torch.equal(layer.lora_B["default"][0], experts_before)
    no_freeze, _ = _method({"router_freeze": False})
    no_freeze.before_experience(_chunk(20))
    assert all(p.requires_grad for r in no_freeze.routers() for p in r.parameters())


def test_chunk_schedule_and_learning_rates(micro_llava):
    method, _ = _method()
    c = method.config
    method.before_experience(_chunk(0))
    assert method.lr_schedule(_chunk(0)) == ("cosine", 0.05)
    assert {g["name"]: g["lr"] for g in method.param_groups()} == {"adapter": 1e-3, "projector": 1e-4}
    method.before_experience(_chunk(1))
    assert method.lr_schedule(_chunk(1)) == ("constant", 0.0)
    lrs = {g["name"]: g["lr"] for g in method.param_groups()}
    assert lrs["adapter"] == pytest.approx(c.lr / 5) and lrs["projector"] == 1e-4
    paper = build_method("strlora", "paper").config
    assert (paper.n_experts, paper.rank, paper.alpha, paper.top_k, paper.sub_top_k, paper.attn_proj_dim) == \
        (4, 64, 128, 2, 1, 64)
    assert (paper.lr, paper.projector_lr, paper.distill_lambda, paper.ema_beta, paper.distill_tau) == \
        (1e-4, 1e-5, 0.1, 0.999, 1.0)


@pytest.mark.parametrize("overrides", [{}, {"stage1": False}, {"stage2": False}, {"attn_proj_dim": 0},
                                       {"distill_lambda": 0.0}])
def test_trainable_parameters_match_the_closed_form(micro_llava, overrides):
    method, _ = _method(overrides)
    projector = sum(p.numel() for n, p in method.model.named_parameters() if PROJECTOR in n)
    counts = count_adapter_parameters(method.model)
    expected = method.parameter_count()
    assert counts["adapter_total"] - projector == expected["total"]
    # by hand for the default micro layout: 14 layers, text width 64, E = 4, r = 32, D = 4
    if not overrides:
        layers = [(lay.in_features, lay.out_features) for lay in method.layers()]
        hand = sum(32 * (i + o) + 4 * 64 + 4 * (i + 64) + 4 * 4 for i, o in layers)
        assert expected["total"] == hand
    method.before_experience(_chunk(4))
    counts = count_adapter_parameters(method.model)
    assert counts["adapter_trainable"] - projector == method.parameter_count()["trainable"] == expected["experts"]


def test_routing_text_never_uses_task_identity_and_padding_switch(micro_llava):
    method, processor = _method()
    batch = _batch(processor)
    method.prepare_batch(batch, training=True)
    with_pads = method.context.sample_embedding.clone()
    anonymous = {k: v for k, v in batch.items() if k != "tasks"}
    method.prepare_batch(anonymous, training=True)
    assert torch.equal(method.context.sample_embedding, with_pads)
    no_pads, _ = _method({"include_padding": False})
    no_pads.prepare_batch(batch, training=True)
    mask = batch["routing_mask"]
    short = int(mask.sum(1).argmin())  # the most padded sample differs between the two averages
    assert mask[short].sum() < mask.shape[1]
    assert not torch.allclose(no_pads.context.sample_embedding[short], with_pads[short])
    full = int(mask.sum(1).argmax())
    torch.testing.assert_close(no_pads.context.sample_embedding[full], with_pads[full])


def _routing_decisions(method, batch):
    """Stage-1 masks and stage-2 gates of every layer on ``batch`` (eval mode)."""
    decisions = []
    hooks = [r.register_forward_hook(lambda m, args, out: decisions.append(out.detach().clone()))
             for r in method.routers()]
    method.model.eval()
    with torch.no_grad():
        inputs = method.prepare_batch(batch, training=False)
        logits = method.model(**inputs).logits
    for h in hooks:
        h.remove()
    return decisions, logits


def test_save_reload_keeps_routing_decisions_and_ema(micro_llava, tmp_path):
    method, processor = _method(seed=0)
    batch = _batch(processor)
    method.before_experience(_chunk(0))
    _train_step(method, batch)
    with torch.no_grad():  # make the experts matter and the routing far from its init
        for n, p in method.model.named_parameters():
            if "lora_" in n:
                p.add_(0.3 * torch.randn_like(p))
    method.before_experience(_chunk(1))
    _train_step(method, batch)
    save_adapter_state(method.model, tmp_path / "adapter.safetensors")
    tensors, meta = method.state()
    assert meta["ema_ready"] is True
    eval_batch = _batch(processor, train=False)
    ref, ref_logits = _routing_decisions(method, eval_batch)

    fresh, _ = _method(seed=123)  # different random init
    before, _ = _routing_decisions(fresh, eval_batch)
    assert any(not torch.equal(a, b) for a, b in zip(before, ref))
    fresh.prepare_for_resume([_chunk(0), _chunk(1)])
    load_adapter_state(fresh.model, tmp_path / "adapter.safetensors")
    fresh.load_state(tensors, meta)
    got, logits = _routing_decisions(fresh, eval_batch)
    assert len(got) == len(ref) and all(torch.equal(a, b) for a, b in zip(got, ref))
    torch.testing.assert_close(logits, ref_logits)
    for a, b in zip(method.routers(), fresh.routers()):
        assert torch.equal(a.ema_query, b.ema_query) and b.ema_ready.item() == 1
    fresh.before_experience(_chunk(2))  # the next chunk continues the stream's EMA instead of resetting it
    assert torch.equal(fresh.routers()[0].ema_query, method.routers()[0].ema_query)


def test_statistics_report_usage_per_layer_and_task(micro_llava):
    method, processor = _method()
    method.before_experience(_chunk(0))
    batch = _batch(processor, train=False)
    inputs = method.prepare_batch(batch, training=False)
    method.model.eval()
    method.generate(inputs, batch, max_new_tokens=2, do_sample=False, pad_token_id=processor.tokenizer.pad_token_id)
    stats = method.statistics()
    usage = stats["expert_usage"]
    assert len(usage) == len(method.layers()) and all(len(v) == 4 for v in usage.values())
    assert all(sum(v) == pytest.approx(1.0) for v in usage.values())
    assert set(stats["task_expert_usage"]) == {"A"} and len(stats["stage1_usage"]) == len(usage)
    # stage 1 picks exactly k = 2 of 4 experts per sample: each selection share is a multiple of 1/(2·3)
    shares = torch.tensor(list(stats["stage1_usage"].values())) * 6
    torch.testing.assert_close(shares, shares.round())
    assert stats["routing"] == {"chunk": 1, "routers_frozen": False, "freeze_chunk": 5, "regulariser_active": False}


@pytest.mark.quant
def test_strlora_on_a_4bit_base(micro_llava_dir):
    from tests.conftest import method_on_4bit

    method, processor = method_on_4bit(micro_llava_dir, "strlora", {"attn_proj_dim": 4})
    method.n_experiences = 25
    assert type(method.layers()[0].base_layer).__name__ == "Linear4bit"
    method.before_experience(_chunk(1))
    logs = _train_step(method, _batch(processor))
    assert "router_kl" in logs and method.layers()[0].lora_A["default"][0].grad is not None


@pytest.mark.slow
def test_resumed_stream_equals_uninterrupted(tmp_path, monkeypatch):
    """Three micro chunks straight through, and again stopped after chunk 2 and resumed: same outputs and state."""
    import json
    import shutil
    from dataclasses import replace

    from safetensors.torch import load_file

    from cvitkit.profiles import load_profile
    from cvitkit.runner import run_method

    monkeypatch.setenv("CVITKIT_WORK", str(tmp_path / "work"))
    monkeypatch.setenv("CVITKIT_RESULTS", str(tmp_path / "results"))
    p = load_profile("smoke")
    p = replace(p, data=replace(p.data, stream_lengths=[3], stream_chunk_size=8, train_per_task=8, test_per_task=2),
                model=replace(p.model, preset="micro"))
    # routers left trainable, so the resumed chunk 3 trains against the EMA teacher restored from chunk 2
    overrides = {"attn_proj_dim": 4, "router_freeze": False}
    first = run_method(p, "strcvit", "strlora", overrides=overrides, stream_length=3, force=True, log=lambda *_: None)
    stages = first.run_dir / "stages"

    def outputs(stage):  # predictions, routing statistics and scores of a stage (timings left out)
        folder = stages / stage
        preds = {f.name: [json.loads(line)["text"] for line in f.read_text().splitlines()]
                 for f in sorted((folder / "predictions").glob("*.jsonl"))}
        scores = {t: v["score"] for t, v in json.loads((folder / "stage.json").read_text())["scores"].items()}
        return preds, json.loads((folder / "statistics.json").read_text()), scores

    reference = outputs("002")
    ref_adapter = load_file(str(stages / "002" / "adapter.safetensors"))
    shutil.rmtree(stages / "002")
    again = run_method(p, "strcvit", "strlora", overrides=overrides, stream_length=3, log=lambda *_: None)
    assert outputs("002") == reference
    assert reference[1]["routing"]["regulariser_active"] and reference[1]["expert_usage"]
    adapter = load_file(str(stages / "002" / "adapter.safetensors"))
    assert set(adapter) == set(ref_adapter) and any("ema_query" in k for k in adapter)
    for k, v in ref_adapter.items():
        torch.testing.assert_close(adapter[k], v, rtol=0, atol=0, msg=k)
    assert again.metrics == first.metrics
