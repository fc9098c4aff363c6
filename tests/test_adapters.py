"""Mixture-of-LoRA layers: equations, equivalence to LoRA, freezing, 4-bit bases, state round trip."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, get_peft_model
from torch import nn

from cvitkit.adapters import (
    MixtureLoraLinear,
    add_lora,
    add_mixture,
    adapter_state_dict,
    count_adapter_parameters,
    load_adapter_state,
    mixture_delta,
    mixture_delta_loop,
    mixture_layers,
    save_adapter_state,
    set_part_trainable,
)
from cvitkit.models import build_tiny_llava, lora_target_regex
from cvitkit.routers import RoutingContext


class _Toy(nn.Module):
    """A module tree whose names look like a language model's, for fast layer-level tests."""

    def __init__(self, d_in=16, d_out=12):
        super().__init__()
        self.language_model = nn.Module()
        self.language_model.layers = nn.ModuleList([nn.Module()])
        self.language_model.layers[0].q_proj = nn.Linear(d_in, d_out, bias=False)

    def forward(self, x):
        return self.language_model.layers[0].q_proj(x)


def _mixture_toy(n_experts=4, rank=8, alpha=16, shared_a=False, router="dense_softmax"):
    from cvitkit.adapters.mixture import MixtureLoraConfig

    torch.manual_seed(0)
    cfg = MixtureLoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules=lora_target_regex(["q_proj"]),
                            mixture={"n_experts": n_experts, "shared_a": shared_a, "router": router})
    model = get_peft_model(_Toy(), cfg)
    layer = mixture_layers(model)[0]
    for p in layer.lora_B["default"]:
        nn.init.normal_(p, std=0.1)  # B = 0 at init would hide every error below
    return model, layer


@pytest.mark.parametrize("shared_a", [False, True])
@pytest.mark.parametrize("gate_shape", ["token", "sample", "batch", None])
def test_batched_mixture_equals_per_expert_loop(shared_a, gate_shape):
    torch.manual_seed(1)
    E, r, d_in, d_out = 4, 3, 10, 7
    x = torch.randn(2, 5, d_in)
    As = [torch.randn(r, d_in) for _ in range(1 if shared_a else E)]
    Bs = [torch.randn(d_out, r) for _ in range(E)]
    gates = {"token": torch.rand(2, 5, E), "sample": torch.rand(2, 1, E), "batch": torch.rand(E), None: None}[gate_shape]
    fast = mixture_delta(x, torch.cat(As), torch.cat(Bs, 1), gates, E, shared_a)
    slow = mixture_delta_loop(x, As, Bs, gates, shared_a)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-5)


def test_moelora_layer_matches_its_equation():
    model, layer = _mixture_toy(n_experts=4, rank=8, alpha=16)
    x = torch.randn(3, 6, 16)
    W0 = layer.base_layer.weight
    Wr = layer.lora_router["default"].weight
    g = torch.softmax(x @ Wr.t(), -1)
    expected = x @ W0.t()
    for e in range(4):
        A, B = layer.lora_A["default"][e], layer.lora_B["default"][e]
        assert A.shape == (2, 16) and B.shape == (12, 2)  # rank 8 split over 4 experts
        expected = expected + (16 / 8) * g[..., e:e + 1] * (x @ A.t() @ B.t())  # scaling uses the TOTAL rank
    torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-5)


def test_one_expert_mixture_equals_plain_lora():
    """MoELoRA with one expert is LoRA: the softmax over one expert is 1."""
    model, layer = _mixture_toy(n_experts=1, rank=4, alpha=8)
    torch.manual_seed(0)
    lora = get_peft_model(_Toy(), LoraConfig(r=4, lora_alpha=8, target_modules=lora_target_regex(["q_proj"])))
    lora_layer = lora.base_model.model.language_model.layers[0].q_proj
    with torch.no_grad():
        lora_layer.base_layer.weight.copy_(layer.base_layer.weight)
        lora_layer.lora_A["default"].weight.copy_(layer.lora_A["default"][0])
        lora_layer.lora_B["default"].weight.copy_(layer.lora_B["default"][0])
    x = torch.randn(2, 3, 16)
    torch.testing.assert_close(model(x), lora(x), rtol=1e-6, atol=1e-6)


def test_shared_trunk_has_one_a_and_n_branches():
    _, layer = _mixture_toy(n_experts=8, rank=32, alpha=64, shared_a=True)
    assert len(layer.lora_A["default"]) == 1 and len(layer.lora_B["default"]) == 8
    assert layer.lora_A["default"][0].shape == (4, 16)


def test_frozen_expert_gets_no_gradient_but_is_still_used():
    model, layer = _mixture_toy(n_experts=4, rank=8, alpha=16)
    frozen = layer.lora_B["default"][1]
    frozen.requires_grad_(False)
    before = frozen.detach().clone()
    x = torch.randn(4, 5, 16)
    out_before = model(x).detach()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model(x).pow(2).mean().backward()
    assert frozen.grad is None and layer.lora_B["default"][0].grad is not None
    opt.step()
    assert torch.equal(frozen, before)
    # Zeroing the frozen expert changes the output: it takes part in the forward pass.
    with torch.no_grad():
        frozen.zero_()
    assert not torch.allclose(model(x), out_before)


def test_base_layer_kept_frozen_and_named_base_layer():
    model, layer = _mixture_toy()
    assert isinstance(layer, MixtureLoraLinear) and isinstance(layer.base_layer, nn.Linear)
    assert not layer.base_layer.weight.requires_grad
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)


def test_peft_custom_module_hook_is_still_there():
    """The kit relies on peft's experimental custom-module dispatch; fail loudly if it moves."""
    assert hasattr(LoraConfig, "_register_custom_module")
    model, _ = _mixture_toy()
    assert any(isinstance(m, MixtureLoraLinear) for m in model.modules())


def test_merge_is_refused_with_a_reason():
    _, layer = _mixture_toy()
    with pytest.raises(NotImplementedError, match="cannot be merged"):
        layer.merge()


def test_routing_stats_are_recorded_when_asked():
    model, layer = _mixture_toy()
    ctx = RoutingContext(record_stats=True)
    layer.routing_context = ctx
    with torch.no_grad():
        model(torch.randn(2, 3, 16))
    stats = ctx.pop_stats()
    (usage,) = stats.values()
    assert usage.shape == (4,) and usage.sum().item() == pytest.approx(6.0, rel=1e-5)  # 2×3 tokens, gates sum to 1


def test_mixture_on_tiny_llava_trains_only_adapters_and_projector(micro_llava):
    model, _ = build_tiny_llava("micro")
    model = add_mixture(model, rank=8, alpha=16, dropout=0.0, mixture={"n_experts": 4}, targets="all_linear",
                        routing_context=RoutingContext())
    layers = mixture_layers(model)
    assert len(layers) == 14 and all("language_model" in lay.layer_name for lay in layers)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert all("lora_" in n or "multi_modal_projector" in n for n in trainable)
    assert any("multi_modal_projector" in n for n in trainable)
    counts = count_adapter_parameters(model)
    # per layer: E·(r_e·d_in + d_out·r_e) + E·d_in (router); projector counted too
    per_layer = sum(4 * (2 * lay.in_features + lay.out_features * 2) + 4 * lay.in_features for lay in layers)
    projector = sum(p.numel() for n, p in model.named_parameters() if "multi_modal_projector" in n)
    assert counts["adapter_total"] == per_layer + projector


def test_adapter_state_round_trip_restores_outputs(tmp_path, micro_llava):
    _, processor = micro_llava
    from tests.conftest import make_image

    def fresh():
        m, _ = build_tiny_llava("micro")
        return add_mixture(m, rank=8, alpha=16, dropout=0.0, mixture={"n_experts": 4}, routing_context=RoutingContext())

    a = fresh()
    with torch.no_grad():
        for n, p in a.named_parameters():
            if "lora_B" in n:
                p.normal_(std=0.05)
    save_adapter_state(a, tmp_path / "adapter.safetensors")
    b = fresh()
    batch = processor(text=["USER: <image>\nQ? ASSISTANT:"], images=[make_image(32)], return_tensors="pt")
    with torch.no_grad():
        assert not torch.allclose(a(**batch).logits, b(**batch).logits)
        load_adapter_state(b, tmp_path / "adapter.safetensors")
        torch.testing.assert_close(a(**batch).logits, b(**batch).logits)
    assert all("lora_" in k or "multi_modal_projector" in k for k in adapter_state_dict(a))


def test_loading_state_of_another_method_is_a_clear_error(tmp_path):
    a, _ = build_tiny_llava("micro")
    a = add_lora(a, rank=4, alpha=8, dropout=0.0)
    save_adapter_state(a, tmp_path / "lora.safetensors")
    b, _ = build_tiny_llava("micro")
    b = add_mixture(b, rank=8, alpha=16, dropout=0.0, mixture={"n_experts": 4})
    with pytest.raises(Exception, match="does not match the model"):
        load_adapter_state(b, tmp_path / "lora.safetensors")


@pytest.mark.quant
def test_mixture_wraps_a_4bit_base_layer(micro_llava_dir):
    from cvitkit.models import enable_training_mode, load_model

    model, processor = load_model(micro_llava_dir, quantization="4bit")
    enable_training_mode(model)
    model = add_mixture(model, rank=8, alpha=16, dropout=0.0, mixture={"n_experts": 4}, routing_context=RoutingContext())
    layer = mixture_layers(model)[0]
    assert type(layer.base_layer).__name__ == "Linear4bit"
    from tests.conftest import make_image

    batch = processor(text=["USER: <image>\nQ? ASSISTANT: red</s>"], images=[make_image(32)], return_tensors="pt")
    out = model(**batch, labels=batch["input_ids"])
    out.loss.backward()
    assert layer.lora_A["default"][0].grad is not None


def test_a_trained_vision_tower_is_saved_and_restored_with_the_adapters(tmp_path, micro_llava):
    """Every method keeps the tower frozen and out of the stage folder; the probe's --train-tower trains it,
    and then a stage folder must hold it, or a resumed probe would score an untrained tower."""
    _, processor = micro_llava
    from tests.conftest import make_image

    def fresh(train_tower: bool):
        m, _ = build_tiny_llava("micro")
        m = add_lora(m, rank=4, alpha=8, dropout=0.0)
        if train_tower:
            assert set_part_trainable(m, "vision_tower", True) == sum(
                p.numel() for n, p in m.named_parameters() if "vision_tower" in n)
        return m

    frozen = fresh(False)
    assert not any("vision_tower" in k for k in adapter_state_dict(frozen))
    a = fresh(True)
    tower = {n for n, p in a.named_parameters() if "vision_tower" in n}
    assert tower and all(a.get_parameter(n).requires_grad for n in tower)
    counts = count_adapter_parameters(a)
    assert counts["adapter_trainable"] == counts["adapter_total"] == sum(
        p.numel() for p in a.parameters() if p.requires_grad)
    with torch.no_grad():
        for n in tower:
            a.get_parameter(n).add_(0.1)
    save_adapter_state(a, tmp_path / "adapter.safetensors")
    b = fresh(True)
    batch = processor(text=["USER: <image>\nQ? ASSISTANT:"], images=[make_image(32)], return_tensors="pt")
    with torch.no_grad():
        assert not torch.allclose(a(**batch).logits, b(**batch).logits)
        load_adapter_state(b, tmp_path / "adapter.safetensors")
        torch.testing.assert_close(a(**batch).logits, b(**batch).logits)
    # a folder saved with a frozen tower does not load into a model that trains it: the tower is missing
    save_adapter_state(frozen, tmp_path / "frozen.safetensors")
    with pytest.raises(Exception, match="does not match the model"):
        load_adapter_state(fresh(True), tmp_path / "frozen.safetensors")


def test_a_trained_tower_gets_its_own_optimizer_group_at_the_projectors_rate():
    from cvitkit.methods.lora_ft import LoraFT, LoraFTConfig

    method = LoraFT(LoraFTConfig(rank=4, alpha=8, lr=1e-3, projector_lr=1e-4))
    model, processor = build_tiny_llava("micro")
    method.setup(model, processor)
    assert [g["name"] for g in method.param_groups()] == ["adapter", "projector"]
    set_part_trainable(method.model, "vision_tower", True)
    groups = {g["name"]: g for g in method.param_groups()}
    assert list(groups) == ["adapter", "projector", "vision_tower"] and groups["vision_tower"]["lr"] == 1e-4
    assert sum(p.numel() for p in groups["vision_tower"]["params"]) == sum(
        p.numel() for n, p in method.model.named_parameters() if "vision_tower" in n)
    # the output head likewise, and nothing else of the base model
    set_part_trainable(method.model, "lm_head", True)
    groups = {g["name"]: g for g in method.param_groups()}
    assert list(groups) == ["adapter", "projector", "vision_tower", "lm_head"] and groups["lm_head"]["lr"] == 1e-4
    assert [p.shape for p in groups["lm_head"]["params"]] == [method.model.get_output_embeddings().weight.shape]
    with pytest.raises(Exception, match="unknown part"):
        set_part_trainable(method.model, "embed_tokens", True)
