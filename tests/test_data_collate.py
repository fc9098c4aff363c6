"""Collators: LLaVA label masking through the processor's image-token expansion, padding, routing text."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from cvitkit.data import IGNORE_INDEX, EvalCollator, RecordDataset, TrainCollator
from cvitkit.errors import DataError
from cvitkit.models.prompt import render_vicuna_v1


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    root = tmp_path_factory.mktemp("collate")
    Image.new("RGB", (64, 64), "blue").save(root / "a.png")
    Image.new("RGB", (80, 40), "green").save(root / "wide.png")
    train = [
        {"id": "one", "image": "a.png", "task": "VQAv2",
         "conversations": [{"from": "human", "value": "<image>\nWhat colour is the box?\nAnswer briefly."},
                           {"from": "gpt", "value": "blue"}]},
        {"id": "multi", "image": "wide.png", "task": "GQA",  # <image> after the text: moved to the front
         "conversations": [{"from": "human", "value": "Is there a ball?\n<image>"}, {"from": "gpt", "value": "no"},
                           {"from": "human", "value": "What colour is the picture?"},
                           {"from": "gpt", "value": "green all over"}]},
        {"id": "text", "task": "Chat", "conversations": [{"from": "human", "value": "Say hello."},
                                                         {"from": "gpt", "value": "hello"}]},
    ]
    test = [{"question_id": "q1", "image": "a.png", "text": "<image>\nWhat colour?\nAnswer briefly.", "answer": "blue",
             "task": "VQAv2"},
            {"question_id": 2, "image": "wide.png", "text": "Which side is the ball on? A long question indeed.",
             "answer": ["left", "left"], "task": "GQA"}]
    return root, train, test


def supervised_text(tok, labels):
    return tok.decode(labels[labels != IGNORE_INDEX])


def test_train_labels_cover_only_the_answers(micro_llava, records):
    model, processor = micro_llava
    root, train, _ = records
    ds = RecordDataset(train, root)
    batch = TrainCollator(processor)([ds[i] for i in range(3)])
    tok = processor.tokenizer
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape
    assert supervised_text(tok, batch["labels"][0]) == " blue</s>"
    assert supervised_text(tok, batch["labels"][1]) == " no</s> green all over</s>"
    assert supervised_text(tok, batch["labels"][2]) == " hello</s>"
    # image tokens are expanded (one per patch) and never supervised; the human turns are masked
    n_img = processor.num_image_tokens if hasattr(processor, "num_image_tokens") else None
    img_id = tok.convert_tokens_to_ids("<image>")
    per_row = (batch["input_ids"] == img_id).sum(1).tolist()
    assert per_row[0] == per_row[1] > 1 and per_row[2] == 0 and (n_img is None or per_row[0] == n_img)
    assert (batch["labels"][batch["input_ids"] == img_id] == IGNORE_INDEX).all()
    assert batch["pixel_values"].shape[0] == 2  # the text-only record has no image
    # right padding, masked out
    lengths = batch["attention_mask"].sum(1)
    for i, n in enumerate(lengths.tolist()):
        assert batch["attention_mask"][i, :n].all() and not batch["attention_mask"][i, n:].any()
        assert (batch["labels"][i, n:] == IGNORE_INDEX).all()
    # the unexpanded prompt is the vicuna_v1 rendering, <image> first
    first = tok.decode(batch["input_ids"][1, : lengths[1]]).replace("<image>", "")
    assert first.startswith("USER: \nIs there a ball? ASSISTANT: no</s>USER: What colour is the picture?")
    out = model(**{k: batch[k] for k in ("input_ids", "attention_mask", "labels", "pixel_values")})
    assert torch.isfinite(out.loss)


def test_routing_text_is_the_user_text_without_image(micro_llava, records):
    _, processor = micro_llava
    root, train, test = records
    ds = RecordDataset(train, root)
    batch = TrainCollator(processor)([ds[i] for i in range(3)])
    tok = processor.tokenizer
    texts = [tok.decode(ids[mask.bool()]) for ids, mask in zip(batch["routing_ids"], batch["routing_mask"])]
    assert texts == ["What colour is the box?\nAnswer briefly.", "Is there a ball?\nWhat colour is the picture?",
                     "Say hello."]
    pad = tok.pad_token_id
    assert (batch["routing_ids"][batch["routing_mask"] == 0] == pad).all()
    assert batch["tasks"] == ["VQAv2", "GQA", "Chat"]


def test_eval_batches_are_left_padded_generation_prompts(micro_llava, records):
    model, processor = micro_llava
    root, _, test = records
    ds = RecordDataset(test, root)
    batch = EvalCollator(processor)([ds[0], ds[1]])
    tok = processor.tokenizer
    assert batch["question_ids"] == ["q1", 2] and batch["answers"] == ["blue", ["left", "left"]]
    assert batch["attention_mask"][:, -1].all() and not batch["attention_mask"][0, 0]  # left padding
    text = tok.decode(batch["input_ids"][0][batch["attention_mask"][0].bool()]).replace("<image>", "")
    assert text == render_vicuna_v1([("user", "\nWhat colour?\nAnswer briefly.")], add_generation_prompt=True)
    text = tok.decode(batch["input_ids"][1][batch["attention_mask"][1].bool()]).replace("<image>", "")
    assert text.startswith("USER: \nWhich side")  # <image> put first although the file's text lacked it
    routing = tok.decode(batch["routing_ids"][1][batch["routing_mask"][1].bool()])
    assert routing == "Which side is the ball on? A long question indeed."
    out = model.generate(**{k: batch[k] for k in ("input_ids", "attention_mask", "pixel_values")}, max_new_tokens=2,
                         do_sample=False)
    assert out.shape[0] == 2


def test_system_prompt_and_max_length(micro_llava, records):
    _, processor = micro_llava
    root, train, _ = records
    ds = RecordDataset(train, root)
    batch = TrainCollator(processor, system_prompt="Be brief.")([ds[0]])
    tok = processor.tokenizer
    assert tok.decode(batch["input_ids"][0]).startswith("Be brief. USER:")
    assert supervised_text(tok, batch["labels"][0]) == " blue</s>"
    full = TrainCollator(processor)([ds[0]])["input_ids"].shape[1]
    cut = TrainCollator(processor, max_length=full - 2)([ds[0]])
    assert cut["input_ids"].shape[1] == full - 2
    with pytest.raises(DataError, match="record 'one'.*max_length 10 cuts through the image tokens.*Fix"):
        TrainCollator(processor, max_length=10)([ds[0]])


def test_misaligned_tokenizer_fails_loudly(micro_llava, records):
    _, processor = micro_llava
    root, train, _ = records
    item = RecordDataset(train, root)[0]
    collator = TrainCollator(processor)
    original = collator._plain
    # a tokenizer that appends a token to every text (e.g. an automatic EOS) breaks the prefix property
    collator._plain = lambda text: original(text) + [5]
    with pytest.raises(DataError, match="record 'one'.*not give a prefix.*Fix"):
        collator([item])
    # token ids that differ from the processor's beyond the <image> expansion
    collator._plain = lambda text: original(text.replace("ASSISTANT:", "ASSISTANT :"))
    with pytest.raises(DataError, match="record 'one'.*differ from the tokenizer's.*Fix"):
        collator([item])
