"""SMoLoRA mechanisms against numbers: the separable router, the fused two-half layer, fixed routers and
frozen base, instruction features without task identity, parameter counts, state round trip and resume."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from cvitkit.adapters.smolora import separable_delta
from cvitkit.adapters.state import count_adapter_parameters, load_adapter_state, save_adapter_state
from cvitkit.errors import ConfigError
from cvitkit.methods.base import PROJECTOR, build_method
from cvitkit.methods.smolora import instruction_text
from cvitkit.routers import RoutingContext
from cvitkit.routers.features import masked_mean
from cvitkit.routers.smolora import STATE, SeparableRouter

E, D_IN, D_TE = 4, 12, 10


def _router(n_experts=E) -> SeparableRouter:
    torch.manual_seed(0)
    return SeparableRouter(in_features=D_IN, n_experts=n_experts, text_dim=D_TE)


def _ctx(text, mask=None) -> RoutingContext:
    ctx = RoutingContext(sample_embedding=text)
    ctx.extras[STATE] = {"mask": mask, "prompt_mean": {}}
    return ctx


# -- router -----------------------------------------------------------------------------------
def test_router_picks_one_vu_and_one_if_expert_by_the_stated_argmaxes():
    router = _router(n_experts=6)
    g = torch.Generator().manual_seed(1)
    x, text = torch.randn(5, 7, D_IN, generator=g), torch.randn(5, D_TE, generator=g)
    gates = router(x, _ctx(text))
    assert gates.shape == (5, 1, 6)
    assert gates[..., :3].sum(-1).eq(1).all() and gates[..., 3:].sum(-1).eq(1).all()
    assert torch.equal(gates[:, 0, :3].argmax(-1), (x.mean(1) @ router.vu_weight.t()).argmax(-1))
    assert torch.equal(gates[:, 0, 3:].argmax(-1), (text @ router.if_weight.t()).argmax(-1))


def test_same_instruction_same_if_expert_whatever_the_image_and_question():
    router = _router()
    text = torch.randn(1, D_TE).expand(6, -1)
    gates = router(torch.randn(6, 5, D_IN), _ctx(text))
    assert gates[:, 0, 2:].argmax(-1).unique().numel() == 1


def test_vu_route_ignores_pads_and_generated_tokens_keep_the_prompt_route():
    router = _router()
    x, text = torch.randn(2, 6, D_IN), torch.randn(2, D_TE)
    mask = torch.tensor([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]])
    ctx = _ctx(text, mask)
    padded = router(x, ctx, "layer")
    alone = router(x[:1, 2:], _ctx(text[:1]))  # the first sample without its pads
    assert torch.equal(padded[:1], alone)
    torch.testing.assert_close(ctx.extras[STATE]["prompt_mean"]["layer"][0], x[0, 2:].mean(0))
    step = router(torch.randn(2, 1, D_IN) * 100, ctx, "layer")  # a decoding step: one new token
    assert torch.equal(step, padded)


def test_masked_mean_matches_hand_computation():
    x = torch.arange(12.0).reshape(1, 4, 3)
    torch.testing.assert_close(masked_mean(x, torch.tensor([[0, 1, 1, 0]])), x[:, 1:3].mean(1))
    torch.testing.assert_close(masked_mean(x, None), x.mean(1))


def test_router_rejects_odd_experts_and_a_missing_instruction_embedding():
    with pytest.raises(ConfigError, match="even"):
        SeparableRouter(in_features=D_IN, n_experts=3, text_dim=D_TE)
    with pytest.raises(ConfigError, match="instruction embedding"):
        _router()(torch.randn(1, 2, D_IN), RoutingContext())
    with pytest.raises(ConfigError, match="even"):
        build_method("smolora", "mini", {"n_experts": 5, "rank": 25})
    with pytest.raises(ConfigError, match="instruction"):
        build_method("smolora", "mini", {"instruction": "question"})


# -- layer equation ---------------------------------------------------------------------------
def _experts(n=E, r_e=2, d_in=5, d_out=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return ([torch.randn(r_e, d_in, generator=g) for _ in range(n)],
            [torch.randn(d_out, r_e, generator=g) for _ in range(n)])


def test_separable_delta_matches_the_equation_written_out():
    As, Bs = _experts()
    x = torch.randn(2, 3, 5)
    gates = torch.tensor([[[1.0, 0, 0, 1]], [[0, 1, 1, 0]]])
    fuse, s = torch.randn(2, 3), 0.5
    got = separable_delta(x, torch.cat(As), torch.cat(Bs, 1), gates, E, fuse, s)
    for b, (eu, ev) in enumerate([(0, 3), (1, 2)]):
        u = s * x[b] @ As[eu].t() @ Bs[eu].t()
        v = s * x[b] @ As[ev].t() @ Bs[ev].t()
        a = torch.softmax(torch.stack([u @ fuse[0], v @ fuse[1]], -1), -1)
        torch.testing.assert_close(got[b], a[:, :1] * u + a[:, 1:] * v)


def test_zero_fusion_weights_average_the_two_halves_and_zero_b_adds_nothing():
    As, Bs = _experts()
    x, gates = torch.randn(1, 4, 5), torch.tensor([[[0.0, 1, 1, 0]]])
    A, B = torch.cat(As), torch.cat(Bs, 1)
    got = separable_delta(x, A, B, gates, E, torch.zeros(2, 3), 1.0)
    torch.testing.assert_close(got, 0.5 * (x @ As[1].t() @ Bs[1].t() + x @ As[2].t() @ Bs[2].t()))
    assert separable_delta(x, A, torch.zeros_like(B), gates, E, torch.randn(2, 3), 1.0).abs().sum() == 0


# -- the method on a micro model ----------------------------------------------------------------
def _method(overrides=None, seed=0):
    from cvitkit.models import build_tiny_llava

    model, processor = build_tiny_llava("micro", seed=0)
    torch.manual_seed(seed)
    method = build_method("smolora", "mini", {"rank": 8, **(overrides or {})})
    method.setup(model, processor)
    return method, processor


def _batch(processor, train=True):
    from tests.conftest import qa_batch

    short = "Answer the question using a single word or phrase."
    items = [(f"What colour is the box?\n{short}", "red", "red"),
             (f"Name the colour of the square.\n{short}", "blue", "red"),
             ("Which colour?\nA. red\nB. green\nAnswer with the option's letter from the given choices directly.", "B",
              "red")]
    return qa_batch(processor, items, train)


def test_instruction_text_is_the_last_line_or_the_whole_prompt():
    assert instruction_text("What is it?\nAnswer briefly.") == "Answer briefly."
    assert instruction_text("Q?\nA. x\nB. y\nPick a letter.\n") == "Pick a letter."
    assert instruction_text("Describe the image.") == "Describe the image."
    assert instruction_text("What is it?\nAnswer briefly.", "prompt") == "What is it?\nAnswer briefly."


def test_instruction_features_come_from_the_text_not_the_task_label():
    method, processor = _method()
    batch = _batch(processor)
    method.prepare_batch(batch, training=True)
    emb = method.context.sample_embedding.clone()
    assert torch.equal(emb[0], emb[1]) and not torch.equal(emb[0], emb[2])  # same format line, same vector
    method.prepare_batch({k: v for k, v in batch.items() if k != "tasks"}, training=True)
    assert torch.equal(method.context.sample_embedding, emb)
    whole, _ = _method({"instruction": "prompt"})
    whole.prepare_batch(batch, training=True)
    assert not torch.equal(whole.context.sample_embedding[0], whole.context.sample_embedding[1])


def test_routers_stay_fixed_base_stays_frozen_and_only_selected_experts_learn():
    method, processor = _method()
    with torch.no_grad():
        for layer in method.layers():
            for b in layer.lora_B["default"]:
                b.normal_(std=0.1)  # B = 0 would give A and the fusion weights no gradient
    routers = {n: t.clone() for n, t in method.model.named_buffers() if "lora_router" in n}
    frozen = {n: p.clone() for n, p in method.model.named_parameters() if not p.requires_grad}
    assert routers and not any("lora_router" in n for n, _ in method.model.named_parameters())
    batch = _batch(processor)
    layer = method.layers()[0]
    seen = []
    hook = layer.lora_router["default"].register_forward_hook(lambda m, args, out: seen.append(out.detach()))
    method.model.train()
    optimizer = torch.optim.AdamW(method.param_groups(), lr=1e-2)
    inputs = method.prepare_batch(batch, training=True)
    loss, _ = method.compute_loss(inputs, method.model(**inputs), batch)
    loss.backward()
    hook.remove()
    used = set(seen[0][:, 0].nonzero()[:, 1].tolist())
    grads = [float(b.grad.abs().sum()) if b.grad is not None else 0.0 for b in layer.lora_B["default"]]
    assert 2 <= len(used) < E  # one VU and one IF expert per sample; with this batch one expert stays unused
    assert all((g > 0) == (e in used) for e, g in enumerate(grads)), (used, grads)
    assert layer.lora_fuse["default"].grad.abs().sum() > 0
    optimizer.step()
    for n, t in method.model.named_buffers():
        if n in routers:
            assert torch.equal(t, routers[n]), n
    for n, p in method.model.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n]), n


def test_trainable_parameters_match_the_closed_form():
    method, _ = _method({"n_experts": 4, "rank": 8})
    expected = sum(8 * (layer.in_features + layer.out_features) + 2 * layer.out_features for layer in method.layers())
    projector = sum(p.numel() for n, p in method.model.named_parameters() if PROJECTOR in n)
    counts = count_adapter_parameters(method.model)
    assert counts["adapter_total"] == expected + projector == counts["adapter_trainable"]


def _decisions(method, batch):
    gates, hooks = [], [layer.lora_router["default"].register_forward_hook(
        lambda m, args, out: gates.append(out.detach().clone())) for layer in method.layers()]
    method.model.eval()
    with torch.no_grad():
        logits = method.model(**method.prepare_batch(batch, training=False)).logits
    for h in hooks:
        h.remove()
    return gates, logits


def test_save_reload_keeps_routing_decisions_and_outputs(tmp_path):
    method, processor = _method(seed=0)
    with torch.no_grad():
        for n, p in method.model.named_parameters():
            if "lora_" in n:
                p.add_(0.3 * torch.randn_like(p))
    save_adapter_state(method.model, tmp_path / "adapter.safetensors")
    batch = _batch(processor, train=False)
    ref, ref_logits = _decisions(method, batch)
    fresh, _ = _method(seed=123)
    before, _ = _decisions(fresh, batch)
    assert any(not torch.equal(a, b) for a, b in zip(before, ref))
    load_adapter_state(fresh.model, tmp_path / "adapter.safetensors")
    got, logits = _decisions(fresh, batch)
    assert all(torch.equal(a, b) for a, b in zip(got, ref))
    torch.testing.assert_close(logits, ref_logits)


def test_statistics_give_per_task_vu_and_if_shares():
    method, processor = _method()
    method.before_experience(SimpleNamespace(index=0, task_name="A", task_id=0, records=[]))
    batch = _batch(processor, train=False)
    inputs = method.prepare_batch(batch, training=False)
    method.model.eval()
    method.generate(inputs, batch, max_new_tokens=3, do_sample=False, pad_token_id=processor.tokenizer.pad_token_id)
    usage = method.statistics()["expert_usage_by_task"]
    assert set(usage) == {"A"}
    for half in ("vu", "if"):
        shares = torch.tensor(usage["A"][half])
        assert shares.shape == (2,) and shares.sum().item() == pytest.approx(1.0)
    n_layers = len(method.layers())
    # one count per sample and layer (its prompt pass; generated tokens are not recounted), so each
    # share is a mean over layers of multiples of 1/3
    total = torch.tensor(usage["A"]["if"]) * 3 * n_layers
    torch.testing.assert_close(total, total.round())


@pytest.mark.slow
def test_resume_after_the_first_experience_equals_uninterrupted(tmp_path, micro_llava_dir):
    from tests.test_engine import Interrupted, _assert_same_run, _interrupt_before, _run

    from cvitkit.train import ContinualTrainer

    reference = _run(tmp_path / "ref", micro_llava_dir, "smolora").run_dir
    with pytest.raises(Interrupted):
        _run(tmp_path / "cut", micro_llava_dir, "smolora",
             patches=[(ContinualTrainer, "train_experience", _interrupt_before(1))])
    resumed = _run(tmp_path / "cut", micro_llava_dir, "smolora").run_dir
    _assert_same_run(resumed, reference)


@pytest.mark.quant
def test_smolora_on_a_4bit_base(micro_llava_dir):
    from tests.conftest import method_on_4bit

    method, processor = method_on_4bit(micro_llava_dir, "smolora", {"rank": 8})
    layer = method.layers()[0]
    assert type(layer.base_layer).__name__ == "Linear4bit"
    batch = _batch(processor)
    inputs = method.prepare_batch(batch, training=True)
    loss, _ = method.compute_loss(inputs, method.model(**inputs), batch)
    loss.backward()
    assert layer.lora_fuse["default"].grad is not None
