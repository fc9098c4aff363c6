"""Answer-only logits: the same loss and gradients as transformers' full causal-LM loss, less work."""

import pytest
import torch

from cvitkit.bench import synthetic_records
from cvitkit.data import TrainCollator
from cvitkit.lm_loss import (IGNORE_INDEX, answer_inputs, answer_logits, answer_loss, forward_with_loss,
                             next_token_targets, supports_logits_to_keep)


def test_targets_are_labels_shifted_left_by_one():
    labels = torch.tensor([[-100, -100, 7, 8, -100], [-100, 5, 6, -100, -100]])
    assert next_token_targets(labels).tolist() == [[-100, 7, 8, -100, -100], [5, 6, -100, -100, -100]]


def _batch(processor, n=3):
    return TrainCollator(processor)(synthetic_records(n, 32))


def test_answer_only_loss_and_gradients_equal_the_full_causal_lm_loss(micro_llava):
    model, processor = micro_llava
    batch = _batch(processor)
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "pixel_values")}
    params = [p for p in model.parameters() if p.requires_grad]

    full = model(**inputs, labels=batch["labels"])
    full_grads = torch.autograd.grad(full.loss, params, allow_unused=True)
    extra = answer_inputs(model, batch["labels"])
    assert set(extra) == {"logits_to_keep"}
    out = model(**inputs, **extra)
    loss = answer_loss(out, batch["labels"], extra)
    grads = torch.autograd.grad(loss, params, allow_unused=True)

    n_supervised = int((batch["labels"] != IGNORE_INDEX).sum())
    assert out.logits.shape == (n_supervised, full.logits.shape[-1])  # one row per answer token
    torch.testing.assert_close(loss, full.loss)
    assert sum(g is not None for g in grads) > len(params) // 2
    for g, h in zip(grads, full_grads):
        assert (g is None) == (h is None)  # layers the LM loss never reaches stay unreached
        if g is not None:
            torch.testing.assert_close(g, h, rtol=1e-4, atol=1e-6)
    # The kept rows are the full logits at the positions that predict an answer token.
    torch.testing.assert_close(answer_logits(out, extra), answer_logits(full, {"labels": batch["labels"]}))


def test_forward_with_loss_matches_the_models_own_loss(micro_llava):
    model, processor = micro_llava
    batch = _batch(processor, 2)
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "pixel_values", "labels")}
    with torch.no_grad():
        _, loss = forward_with_loss(model, inputs)
        assert loss.item() == pytest.approx(model(**inputs).loss.item(), rel=1e-5)


def test_no_supervised_token_gives_zero_loss_not_nan(micro_llava):
    model, processor = micro_llava
    batch = _batch(processor, 2)
    labels = torch.full_like(batch["labels"], IGNORE_INDEX)
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "pixel_values")}
    extra = answer_inputs(model, labels)
    with torch.no_grad():
        loss = answer_loss(model(**inputs, **extra), labels, extra)
    assert loss.item() == 0.0


def test_a_model_without_logits_to_keep_gets_labels_and_its_own_loss():
    class Plain(torch.nn.Module):
        def forward(self, input_ids, labels=None):
            return type("Out", (), {"loss": torch.tensor(1.25), "logits": torch.zeros(1, 3, 4)})()

    model, labels = Plain(), torch.tensor([[-100, 1, 2]])
    assert not supports_logits_to_keep(model)
    extra = answer_inputs(model, labels)
    assert set(extra) == {"labels"} and extra["labels"] is labels
    assert answer_loss(model(torch.zeros(1, 3), **extra), labels, extra).item() == 1.25
