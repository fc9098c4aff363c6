"""The text-only option-pointer probe: prompts answer themselves correctly, and its loop can learn."""

import copy
import random
import re

import pytest
import torch

from cvitkit.option_pointer import LETTERS, VALUE_POOLS, encode, letter_chance, pointer_prompt, train_pointer


def test_prompt_letter_names_the_option_equal_to_the_stated_value():
    rng = random.Random(3)
    for _ in range(300):
        prompt, letter, value = pointer_prompt(rng)
        assert re.search(rf"It is {re.escape(value)}\.", prompt)
        options = dict(re.findall(r"^([A-D])\. (\S+)$", prompt, flags=re.M))
        assert 3 <= len(options) <= 4 and list(options) == list(LETTERS[: len(options)])
        assert options[letter] == value
        assert len(set(options.values())) == len(options)  # one matching option only
        assert any(set(options.values()) <= set(pool) for pool in VALUE_POOLS)  # options of one kind


def test_letters_are_spread_over_positions():
    rng = random.Random(0)
    letters = [pointer_prompt(rng)[1] for _ in range(2000)]
    # uniform over 3 or 4 positions: A-C at ~7/24 each, D at ~1/8
    for letter in "ABC":
        assert 0.25 < letters.count(letter) / 2000 < 0.34
    assert 0.09 < letters.count("D") / 2000 < 0.16
    assert letter_chance() == pytest.approx(7 / 24)


def test_encode_left_pads_and_targets_the_answer_token(micro_llava):
    _, processor = micro_llava
    tok = processor.tokenizer
    ids, mask, target = encode(tok, random.Random(1), 8, "letter")
    assert ids.shape == mask.shape and ids.shape[0] == 8 and target.shape == (8,)
    assert mask[:, -1].all() and (mask.sum(1) < ids.shape[1]).any()  # padding on the left
    prompt, letter, _ = pointer_prompt(random.Random(1))
    assert target[0].item() == tok(" " + letter, add_special_tokens=False)["input_ids"][-1]
    _, _, copy_target = encode(tok, random.Random(1), 8, "copy")
    assert (copy_target != target).any()
    with pytest.raises(ValueError, match="unknown task"):
        encode(tok, random.Random(1), 2, "colour")


def test_copy_control_is_learned_by_a_micro_model():
    """The one-hop control must leave chance within 100 steps (0.89 after 50 in a check), or the loop
    itself is broken."""
    from cvitkit.models import build_tiny_llava

    model, processor = build_tiny_llava("micro", seed=0)
    curve = train_pointer(model, processor.tokenizer, "copy", steps=100, lr=3e-3, eval_every=25, n_test=128,
                          stop_at=0.8)
    assert curve[0]["accuracy"] < 0.2
    assert curve[-1]["accuracy"] >= 0.8, curve
    assert curve[-1]["step"] < 100  # stopped early once it reached stop_at
    vision = list(model.model.vision_tower.parameters())[0]
    assert vision.grad is None  # only the language model trains


def test_best_constant_is_the_share_of_the_most_frequent_held_out_answer(micro_llava):
    from collections import Counter

    from cvitkit.option_pointer import best_constant

    _, processor = micro_llava
    rng = random.Random(10_000)  # the held-out prompts of train_pointer(seed=0)
    letters = Counter(pointer_prompt(rng)[1] for _ in range(256))
    assert best_constant(processor.tokenizer, "letter") == pytest.approx(max(letters.values()) / 256)


def test_write_table_merges_calls_by_model_and_task(tmp_path):
    import json

    import pandas as pd

    from cvitkit.option_pointer import write_table

    def row(model, task, acc):
        return {"model": model, "task": task, "steps": 10, "final accuracy": acc}

    write_table(tmp_path, [row("m1", "letter", 30.0), row("m1", "copy", 90.0)], {"call": 1}, {})
    table = write_table(tmp_path, [row("m1", "copy", 100.0), row("m2", "letter", 31.0)], {"call": 2}, {})
    assert list(zip(table["model"], table["task"], table["final accuracy"])) == [
        ("m1", "letter", 30.0), ("m1", "copy", 100.0), ("m2", "letter", 31.0)]
    assert pd.read_csv(tmp_path / "option_pointer.csv").equals(table)
    calls = json.loads((tmp_path / "option_pointer.json").read_text())["calls"]
    assert [c["arguments"] for c in calls] == [{"call": 1}, {"call": 2}]


def test_bare_recall_answers_with_the_matching_options_letter_token_and_remap_with_another(micro_llava):
    _, processor = micro_llava
    tok = processor.tokenizer
    ids, mask, target = encode(tok, random.Random(5), 64, "recall")
    _, _, remapped = encode(tok, random.Random(5), 64, "recall_remap")   # same prompts, other answers
    letters = {tok(letter, add_special_tokens=False)["input_ids"][-1] for letter in LETTERS}
    for row, m, answer, other in zip(ids.tolist(), mask.tolist(), target.tolist(), remapped.tolist()):
        prompt = [t for t, keep in zip(row, m) if keep]
        query, pairs = prompt[0], prompt[2:-1]
        assert len(pairs) in (6, 8) and set(pairs[0::2]) <= letters
        # the answer is the letter token just before the option equal to the queried value
        assert pairs[pairs[1::2].index(query) * 2] == answer
        assert other not in prompt and other != answer
        assert tok.decode([other]).strip() == tok.decode([answer])


def test_merged_markdown_leaves_missing_cells_empty(tmp_path):
    from cvitkit.option_pointer import write_table

    write_table(tmp_path, [{"model": "m", "task": "copy", "chance": None, "steps": 250}], {}, {})
    write_table(tmp_path, [{"model": "m", "task": "letter", "chance": 29.2, "steps": 3000}], {}, {})
    text = (tmp_path / "option_pointer.md").read_text()
    assert "nan" not in text and "29.2" in text


def test_seeds_are_rows_of_their_own_and_rows_saved_before_seeds_count_as_seed_0(tmp_path):
    import pandas as pd

    from cvitkit.option_pointer import write_table

    # a table written before the seed column existed
    pd.DataFrame([{"model": "m", "task": "recall", "steps": 3000, "best accuracy": 60.5}]).to_csv(
        tmp_path / "option_pointer.csv", index=False)
    table = write_table(tmp_path, [{"model": "m", "task": "recall", "seed": 1, "steps": 3000, "best accuracy": 40.0},
                                   {"model": "m", "task": "recall", "seed": 2, "steps": 3000, "best accuracy": 90.0}],
                        {}, {})
    assert list(zip(table["seed"], table["best accuracy"])) == [(0, 60.5), (1, 40.0), (2, 90.0)]
    table = write_table(tmp_path, [{"model": "m", "task": "recall", "seed": 0, "steps": 3000, "best accuracy": 61.0}],
                        {}, {})
    assert list(zip(table["seed"], table["best accuracy"])) == [(0, 61.0), (1, 40.0), (2, 90.0)]


def test_the_held_out_prompts_do_not_depend_on_the_training_seed(micro_llava, monkeypatch):
    import cvitkit.option_pointer as op

    drawn = []  # the prompts of every encode call: the held-out set first, then each training batch

    def spy(tokenizer, rng, n, task):
        out = encode(tokenizer, rng, n, task)
        drawn.append(out[0])
        return out

    monkeypatch.setattr(op, "encode", spy)
    _, processor = micro_llava
    model = copy.deepcopy(micro_llava[0])
    held_out, first_batch = [], []
    for seed in (0, 3):
        drawn.clear()
        train_pointer(model, processor.tokenizer, "letter", 1, seed=seed, n_test=16, batch_size=4)
        held_out.append(drawn[0])
        first_batch.append(drawn[1])
    assert torch.equal(held_out[0], held_out[1])
    assert not torch.equal(first_batch[0], first_batch[1])  # the seed does change the training prompts


def test_curriculum_is_scored_on_the_letter_prompts_and_trains_on_both_tasks(micro_llava, monkeypatch):
    import cvitkit.option_pointer as op

    _, processor = micro_llava
    tok = processor.tokenizer
    a = encode(tok, random.Random(5), 8, "letter_curriculum")
    b = encode(tok, random.Random(5), 8, "letter")
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    drawn = []

    def spy(tokenizer, rng, n, task):
        drawn.append((task, n))
        return encode(tokenizer, rng, n, task)

    monkeypatch.setattr(op, "encode", spy)
    train_pointer(copy.deepcopy(micro_llava[0]), tok, "letter_curriculum", 2, n_test=16, batch_size=8)
    assert drawn[0] == ("letter_curriculum", 16)  # the held-out set: letter prompts
    assert drawn[1:] == [("recall", 4), ("letter", 4)] * 2  # each step: half a batch of each


def test_curriculum_row_trains_bare_recall_first(micro_llava, monkeypatch):
    from types import SimpleNamespace

    import cvitkit.option_pointer as op

    calls = []

    def fake_train(model, tokenizer, task, steps, **kwargs):
        calls.append((task, steps))
        return [{"step": 0, "accuracy": 0.25, "seconds": 0.0}, {"step": steps, "accuracy": 0.5, "seconds": 2.0}]

    monkeypatch.setattr(op, "train_pointer", fake_train)
    args = SimpleNamespace(steps=30, warm_steps=70, lr=1e-3, stop_at=0.99)
    row, curve = op._probe_row("m", lambda: (micro_llava[0], micro_llava[1].tokenizer), "letter_curriculum", 0, args)
    assert calls == [("recall", 70), ("letter_curriculum", 30)]
    assert row["recall steps first"] == 70 and row["steps"] == 30 and row["train seconds"] == 4.0
    assert curve[0]["warm_up"][-1]["step"] == 70
    row, _ = op._probe_row("m", lambda: (micro_llava[0], micro_llava[1].tokenizer), "letter", 0, args)
    assert calls[-1] == ("letter", 30) and row["recall steps first"] is None


def test_value_letter_prompt_ends_with_the_unstated_value_and_targets_its_options_letter(micro_llava):
    _, processor = micro_llava
    tok = processor.tokenizer
    ids, mask, target = encode(tok, random.Random(7), 32, "value_letter")
    for row, m, answer in zip(ids.tolist(), mask.tolist(), target.tolist()):
        prompt = tok.decode([t for t, keep in zip(row, m) if keep])
        assert "It is" not in prompt  # the value comes from the reply, not from the question
        head, value = prompt.rsplit("ASSISTANT: ", 1)
        options = dict(re.findall(r"^([A-D])\. (\S+)$", head, flags=re.M))
        letter = next(k for k, v in options.items() if v == value)
        assert answer == tok(" " + letter, add_special_tokens=False)["input_ids"][-1]
        assert head.count(value) == 1  # the option is the value's only earlier copy
