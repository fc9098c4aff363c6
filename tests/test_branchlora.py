"""BranchLoRA: trunk/branch shapes, sparse task routing, flexible freezing, task selector, counts, resume."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cvitkit.adapters import count_adapter_parameters, load_adapter_state, mixture_layers, save_adapter_state
from cvitkit.bench import train_step
from cvitkit.data.streams import Experience
from cvitkit.methods.base import build_method
from cvitkit.methods.branchlora import (
    branchlora_parameter_count,
    moelora_parameter_count,
    paper_scale_counts,
)
from cvitkit.models import build_tiny_llava
from cvitkit.routers import RoutingContext
from cvitkit.routers.branchlora import BranchRouterBank, TaskSelector, choose_branches_to_freeze
from tests.conftest import make_image



@pytest.fixture(autouse=True)
def _one_thread():
    """These tensors are tiny: on shared cores, intra-op thread hand-offs cost more than the maths."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


COLOURS = {"A": "red", "B": "blue", "C": "green"}
QUESTIONS = {"A": "What colour is the square?", "B": "How many squares are there in the picture?",
             "C": "Where is the box located relative to the centre?"}


def _method(name: str = "branchlora", **overrides):
    model, processor = build_tiny_llava("micro")
    method = build_method(name, "mini", overrides)
    method.setup(model, processor)
    return method, processor


def _experience(i: int, task: str) -> Experience:
    return Experience(index=i, task_name=task, task_id=i, records=[], is_first=i == 0, is_last=False)


def _records(task: str, n: int = 4, train: bool = True) -> list[dict]:
    out = []
    for i in range(n):
        image = make_image(32, COLOURS[task])
        if train:
            out.append({"id": f"{task}{i}", "task": task, "image": "x.png", "pil_image": image,
                        "conversations": [{"from": "human", "value": "<image>\n" + QUESTIONS[task]},
                                          {"from": "gpt", "value": COLOURS[task]}]})
        else:
            out.append({"question_id": f"{task}{i}", "task": task, "image": "x.png", "pil_image": image,
                        "text": QUESTIONS[task], "answer": COLOURS[task]})
    return out


def _train_batch(processor, task: str, n: int = 4):
    from cvitkit.data import TrainCollator

    return TrainCollator(processor)(_records(task, n))


def _eval_batch(processor, tasks: list[str]):
    from cvitkit.data import EvalCollator

    return EvalCollator(processor)([r for t in tasks for r in _records(t, 2, train=False)])


def _randomise_branches(method, std=0.05):
    with torch.no_grad():
        for layer in method.layers():
            for B in layer.lora_B["default"]:
                B.normal_(std=std)


def _fake_task(method, processor, i: int, task: str, steps: int = 2, finish: bool = True):
    """before_experience → a few real optimizer steps → after_experience (like the trainer, no eval)."""
    method.before_experience(_experience(i, task))
    method.before_training(_experience(i, task), steps)
    opt = torch.optim.AdamW(method.param_groups())
    for _ in range(steps):
        train_step(method, opt, _train_batch(processor, task))
    if finish:
        method.after_experience(_experience(i, task), [])


# -- layer and router ----------------------------------------------------------------------------------
def test_shared_trunk_has_one_a_and_n_branches_with_the_stated_shapes():
    method, _ = _method()
    layers = method.layers()
    assert len(layers) == 14  # 2 layers × q, k, v, o, gate, up, down
    for layer in layers:
        A, Bs = layer.lora_A["default"], layer.lora_B["default"]
        assert len(A) == 1 and A[0].shape == (4, layer.in_features)  # r_b = 32 / 8
        assert len(Bs) == 8 and all(B.shape == (layer.out_features, 4) for B in Bs)
        assert layer.scaling["default"] == 64 / 32  # α / (N · r_b)
        assert layer.lora_router["default"].weights[0].shape == (8, layer.in_features)
    unshared, _ = _method(share_a=False)
    assert all(len(lay.lora_A["default"]) == 8 for lay in unshared.layers())


@pytest.mark.parametrize("k", [1, 2, 3])
def test_topk_selects_exactly_k_branches_per_token_and_per_sample(k):
    torch.manual_seed(0)
    x = torch.randn(3, 7, 16)
    token = BranchRouterBank(16, 8, top_k=k)
    gates = token(x, RoutingContext())
    assert gates.shape == (3, 7, 8)
    assert ((gates > 0).sum(-1) == k).all()
    torch.testing.assert_close(gates.sum(-1), torch.ones(3, 7))
    first = BranchRouterBank(16, 8, top_k=k, granularity="first_token")
    ctx = RoutingContext(extras={"first_index": torch.tensor([0, 2, 5])})
    g = first(x, ctx)
    assert g.shape == (3, 1, 8) and ((g > 0).sum(-1) == k).all()
    # each sample is routed from its first real token (left padding at evaluation)
    expected = torch.softmax(x[[0, 1, 2], [0, 2, 5]] @ first.weights[0].t(), -1)
    kept = expected.topk(k, -1)
    torch.testing.assert_close(g[:, 0].gather(-1, kept.indices), kept.values / kept.values.sum(-1, keepdim=True))
    # the decision made on the prompt is reused for generated tokens
    with torch.no_grad():
        prefill = first(x, ctx)
        step = first(torch.randn(3, 1, 16), ctx)
    torch.testing.assert_close(step, prefill)
    dense = BranchRouterBank(16, 8, top_k=0)(x, RoutingContext())
    assert ((dense > 0).sum(-1) == 8).all()


def test_each_sample_uses_the_router_of_its_task_index():
    torch.manual_seed(0)
    bank = BranchRouterBank(16, 8, top_k=2)
    bank.add_router()
    bank.add_router()
    x = torch.randn(3, 5, 16)
    ctx = RoutingContext(task_index=torch.tensor([2, 0, 1]))
    gates = bank(x, ctx)
    for b, t in enumerate([2, 0, 1]):
        alone = bank(x[b:b + 1], RoutingContext(extras={"branch_router": t}))
        torch.testing.assert_close(gates[b:b + 1], alone)
        probs = torch.softmax(x[b] @ bank.weights[t].t(), -1)
        assert torch.equal(gates[b] > 0, probs >= probs.topk(2, -1).values[:, -1:])
    assert not torch.allclose(bank(x, RoutingContext(extras={"branch_router": 0})), gates)
    # only the current task's router learns; the gradient reaches it through the renormalised top-k
    bank.set_trainable(2)
    (bank(x, ctx) * torch.randn(3, 5, 8)).sum().backward()
    assert bank.weights[0].grad is None and bank.weights[1].grad is None
    assert bank.weights[2].grad is not None and bank.weights[2].grad.abs().sum() > 0


def test_layer_output_matches_the_branchlora_equation():
    method, processor = _method()
    method.before_experience(_experience(0, "A"))
    _randomise_branches(method)
    layer = method.layers()[0]
    ctx = method.context
    ctx.task_index, ctx.extras = torch.tensor([0, 0]), {"branch_router": 0}
    x = torch.randn(2, 3, layer.in_features)
    A, Bs = layer.lora_A["default"][0], layer.lora_B["default"]
    g = torch.softmax(x @ layer.lora_router["default"].weights[0].t(), -1)
    top = g.topk(2, -1)
    expected = layer.base_layer(x)
    for j in range(8):
        gate = torch.where((top.indices == j).any(-1), g[..., j] / top.values.sum(-1), torch.zeros(()))
        expected = expected + 2.0 * gate.unsqueeze(-1) * (x @ A.t() @ Bs[j].t())
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-6)


# -- flexible tuning-freezing ---------------------------------------------------------------------------
def test_freezing_picks_the_most_used_tunable_branches():
    usage = torch.tensor([0.10, 0.30, 0.05, 0.25, 0.20, 0.10, 0.0, 0.0])
    assert choose_branches_to_freeze(usage, set(), 2) == [1, 3]
    assert choose_branches_to_freeze(usage, {1}, 2) == [3, 4]  # branch 1 is already frozen
    assert choose_branches_to_freeze(usage, {1}, 2, policy="topk_of_all") == [3]  # overlap: only 3 is new
    assert choose_branches_to_freeze(usage, {0, 1, 2, 3, 4, 5}, 2, min_tunable=2) == []  # keep k tunable
    assert choose_branches_to_freeze(usage, {0, 1, 2, 3, 4, 5}, 2, min_tunable=0) == [6, 7]  # run out
    assert choose_branches_to_freeze(usage, {0, 1, 2, 3}, 2, min_tunable=2) == [4, 5]
    # over an 8-task sequence with N = 8, k = 2: 2, 4, 6 frozen, then the last 2 stay tunable
    frozen: set[int] = set()
    counts = []
    for task in range(8):
        frozen |= set(choose_branches_to_freeze(torch.rand(8), frozen, 2, min_tunable=2))
        counts.append(len(frozen))
    assert counts == [2, 4, 6, 6, 6, 6, 6, 6]


def test_frozen_branches_get_no_gradient_yet_are_routed_to_and_change_the_output():
    method, processor = _method()
    _fake_task(method, processor, 0, "A", steps=1, finish=False)
    layer = method.layers()[0]
    name = layer.layer_name
    method._usage = {lay.layer_name: torch.zeros(8) for lay in method.layers()}
    method._usage[name] = torch.tensor([5.0, 0, 0, 9.0, 0, 0, 1.0, 0])
    method.after_experience(_experience(0, "A"), [])
    assert method.frozen[name] == {0, 3}
    method.before_experience(_experience(1, "B"))
    Bs = layer.lora_B["default"]
    assert [B.requires_grad for B in Bs] == [j not in (0, 3) for j in range(8)]
    assert layer.lora_A["default"][0].requires_grad  # the trunk keeps training
    _randomise_branches(method)
    batch = _train_batch(processor, "B")
    # freeze, in this layer, the two branches the new router uses most on this batch
    method.context.pop_stats()
    with torch.no_grad():
        inputs = method.prepare_batch(batch, training=True)
        method.context.record_stats = True
        method.model(**inputs)
    f0, f1, tunable = method.context.pop_stats()[name].topk(3).indices.tolist()
    method.frozen[name] = {f0, f1}
    method.apply_trainable(True)
    before = [B.detach().clone() for B in Bs]
    opt = torch.optim.AdamW(method.param_groups(), lr=0.1, weight_decay=0.0)
    inputs = method.prepare_batch(batch, training=True)
    method.context.record_stats = True
    loss, _ = method.compute_loss(inputs, method.model(**inputs), batch)
    loss.backward()
    assert Bs[f0].grad is None and Bs[f1].grad is None and Bs[tunable].grad is not None
    opt.step()
    assert torch.equal(Bs[f0], before[f0]) and torch.equal(Bs[f1], before[f1])
    assert not torch.equal(Bs[tunable], before[tunable])
    usage = method.context.pop_stats()[name]
    assert usage[f0] > 0 and usage[f1] > 0  # frozen branches are still routed to
    with torch.no_grad():
        reference = method.model(**method.prepare_batch(batch, training=True)).logits
        Bs[f0].zero_()
        assert not torch.allclose(method.model(**method.prepare_batch(batch, training=True)).logits, reference)


# -- task selector --------------------------------------------------------------------------------------
def test_selector_keys_move_to_the_features_and_pick_the_right_task():
    torch.manual_seed(0)
    centres_img, centres_txt = torch.randn(3, 12), torch.randn(3, 20)

    def sample(t, n=16):
        return centres_img[t] + 0.3 * torch.randn(n, 12), centres_txt[t] + 0.3 * torch.randn(n, 20)

    selector = TaskSelector(12, 20)
    for t in range(3):
        selector.add_task()
        assert [k.requires_grad for k in selector.image_keys] == [i == t for i in range(t + 1)]
        img, txt = sample(t)
        start = selector.alignment_loss(t, img, txt).item()
        cos_before = torch.cosine_similarity(selector.image_keys[t], centres_img[t], 0).item()
        opt = torch.optim.Adam([selector.image_keys[t], selector.text_keys[t]], lr=0.05)
        for _ in range(100):
            loss = selector.alignment_loss(t, *sample(t))
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert selector.alignment_loss(t, img, txt).item() < 0.3 * start
        assert torch.cosine_similarity(selector.image_keys[t], centres_img[t], 0).item() > max(0.9, cos_before)
    for t in range(3):
        assert (selector.select(*sample(t, 50)) == t).all()
        img, txt = sample(t, 50)
        assert (selector.select(None, txt) == t).all()  # text-only samples use the text key alone
    # the score is the sum of the two cosines
    img, txt = sample(1, 4)
    sims = selector.similarities(img, txt)
    k = torch.nn.functional.normalize(torch.stack(list(selector.image_keys)), dim=-1)
    expected = torch.nn.functional.normalize(img, dim=-1) @ k.t() + selector.similarities(None, txt)
    torch.testing.assert_close(sims, expected)


def test_selector_routes_evaluation_batches_and_reports_its_accuracy():
    method, processor = _method()
    for i, task in enumerate("ABC"):
        _fake_task(method, processor, i, task)
    batch = _eval_batch(processor, ["A", "B", "C"])
    method.prepare_batch(batch, training=False)
    predicted = method.context.task_index.tolist()
    truth = [0, 0, 1, 1, 2, 2]
    stats = method.statistics()
    acc = stats["selector_accuracy"]
    expected = 100.0 * sum(p == t for p, t in zip(predicted, truth)) / 6
    assert acc["overall"] == pytest.approx(expected)
    assert predicted == truth  # separable toy tasks (different colours and questions)
    oracle, processor = _method(selector="oracle")
    for i, task in enumerate("ABC"):
        _fake_task(oracle, processor, i, task, steps=1)
    oracle.prepare_batch(batch, training=False)
    assert oracle.context.task_index.tolist() == truth


# -- parameter counts -----------------------------------------------------------------------------------
def test_trainable_parameter_counts_match_the_closed_form():
    method, processor = _method()
    shapes = [(lay.in_features, lay.out_features) for lay in method.layers()]
    projector = sum(p.numel() for n, p in method.model.named_parameters() if "multi_modal_projector" in n)
    keys = (32, 64)  # micro vision hidden, text hidden
    _fake_task(method, processor, 0, "A", steps=1)
    counts = count_adapter_parameters(method.model)
    one = branchlora_parameter_count(shapes, 8, 4, key_dims=keys, n_keys=1, projector=projector)
    assert counts == {"adapter_total": one, "adapter_trainable": one}
    _fake_task(method, processor, 1, "B", steps=1)  # 2 branches per layer are frozen now
    counts = count_adapter_parameters(method.model)
    assert counts["adapter_trainable"] == branchlora_parameter_count(
        shapes, 8, 4, n_tunable=6, key_dims=keys, n_keys=1, projector=projector)  # only the current router
    assert counts["adapter_total"] == branchlora_parameter_count(
        shapes, 8, 4, n_routers=2, key_dims=keys, n_keys=2, projector=projector)
    moe, _ = _method("moelora")
    assert count_adapter_parameters(moe.model)["adapter_total"] == moelora_parameter_count(shapes, 8, 4, projector)
    # paper scale (LLaVA-1.5-7B, rank 128 = 8 × 16, all LM linears): the reported 222M vs 350M
    paper = paper_scale_counts()
    assert paper["branchlora"] / 1e6 == pytest.approx(222.7, abs=0.5)
    assert paper["moelora"] / 1e6 == pytest.approx(350.3, abs=0.5)


# -- ablation switches ----------------------------------------------------------------------------------
def test_all_switches_off_is_moelora():
    off = {"share_a": False, "top_k": 0, "freeze_after_task": False, "task_routers": False}
    method, processor = _method(**off)
    moe, _ = _method("moelora")
    for i, task in enumerate("AB"):
        method.before_experience(_experience(i, task))
        moe.before_experience(_experience(i, task))
    assert method.selector is None and all(b.n_routers == 1 for b in method.banks())
    assert count_adapter_parameters(method.model) == count_adapter_parameters(moe.model)
    with torch.no_grad():
        for mine, theirs in zip(method.layers(), moe.layers()):
            for p, q in zip([*mine.lora_A["default"], *mine.lora_B["default"]],
                            [*theirs.lora_A["default"], *theirs.lora_B["default"]]):
                p.copy_(torch.randn_like(q) * 0.1)
                q.copy_(p)
            mine.lora_router["default"].weights[0].copy_(theirs.lora_router["default"].weight)
        mine_projector = {n: p for n, p in method.model.named_parameters() if "multi_modal_projector" in n}
        for n, q in moe.model.named_parameters():
            if "multi_modal_projector" in n:
                q.copy_(mine_projector[n])
    batch = _train_batch(processor, "A")
    inputs = method.prepare_batch(batch, training=True)
    out = method.model(**inputs)
    ref = moe.model(**moe.prepare_batch(batch, training=True))
    torch.testing.assert_close(out.logits, ref.logits, rtol=1e-5, atol=1e-5)
    loss, logs = method.compute_loss(inputs, out, batch)
    assert set(logs) == {"lm"}  # no alignment term without task routers


# -- state round trip -----------------------------------------------------------------------------------
def test_save_reload_keeps_selector_and_routing_decisions(tmp_path):
    torch.manual_seed(0)
    method, processor = _method()
    for i, task in enumerate("AB"):
        _fake_task(method, processor, i, task)
    _randomise_branches(method)
    save_adapter_state(method.model, tmp_path / "adapter.safetensors")
    tensors, meta = method.state()
    batch = _eval_batch(processor, ["A", "B"])

    def decisions(m):
        m.context.pop_stats()
        with torch.no_grad():
            inputs = m.prepare_batch(batch, training=False)
            logits = m.model(**inputs).logits
        return m.context.task_index.clone(), m.context.pop_stats(), logits

    restored, _ = _method()
    restored.prepare_for_resume([_experience(0, "A"), _experience(1, "B")])
    load_adapter_state(restored.model, tmp_path / "adapter.safetensors")
    restored.load_state(tensors, meta)
    (i1, s1, l1), (i2, s2, l2) = decisions(method), decisions(restored)
    assert torch.equal(i1, i2) and s1.keys() == s2.keys()
    for k in s1:
        torch.testing.assert_close(s1[k], s2[k])
    torch.testing.assert_close(l1, l2)
    assert restored.frozen == method.frozen and restored.task_order == ["A", "B"]
    # the next task continues identically: same trainable set
    for m in (method, restored):
        m.before_experience(_experience(2, "C"))
    assert count_adapter_parameters(method.model) == count_adapter_parameters(restored.model)


# -- quantised base -------------------------------------------------------------------------------------
@pytest.mark.quant
def test_branchlora_trains_over_a_4bit_base(micro_llava_dir):
    from tests.conftest import method_on_4bit

    method, processor = method_on_4bit(micro_llava_dir, "branchlora")
    method.before_experience(_experience(0, "A"))
    method.before_training(_experience(0, "A"), 1)
    layer = mixture_layers(method.model)[0]
    assert type(layer.base_layer).__name__ == "Linear4bit"
    batch = _train_batch(processor, "A")
    inputs = method.prepare_batch(batch, training=True)
    loss, logs = method.compute_loss(inputs, method.model(**inputs), batch)
    loss.backward()
    assert layer.lora_A["default"][0].grad is not None and layer.lora_router["default"].weights[0].grad is not None
    assert method.selector.image_keys[0].grad is not None and "align" in logs
    assert isinstance(method.selector, nn.Module)


# -- end to end -----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_smoke_run_end_to_end_and_resume_repeats_the_last_stage(micro_smoke_profile):
    """run_method on CoIN (micro model, a few samples); then the last stage is redone from a resume."""
    import json
    import shutil

    from cvitkit.runner import run_method

    profile = micro_smoke_profile()
    result = run_method(profile, "coin", "branchlora", force=True, log=lambda *_: None)
    assert result.matrix.shape == (8, 8)
    stages = sorted((result.run_dir / "stages").iterdir())
    last = stages[-1]
    stats = json.loads((last / "statistics.json").read_text())
    assert set(stats["selector_accuracy"]) == set(result.matrix.columns) | {"overall"}
    assert all(n >= 2 for n in stats["tunable_branches"].values())  # min_tunable = k
    trainable = [json.loads((s / "stage.json").read_text())["log"]["adapter_trainable"] for s in stages]
    assert trainable[0] > trainable[1] > trainable[2] > trainable[3] == trainable[-1]  # branches freeze
    predictions = (last / "predictions" / "OCR-VQA.jsonl").read_text()
    shutil.rmtree(last)
    again = run_method(profile, "coin", "branchlora", log=lambda *_: None)
    assert (last / "predictions" / "OCR-VQA.jsonl").read_text() == predictions  # same routing and outputs
    assert json.loads((last / "statistics.json").read_text())["selector_accuracy"] == stats["selector_accuracy"]
    assert again.matrix.equals(result.matrix)
