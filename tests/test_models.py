"""Tiny LLaVA builder, save/load, tokenizer, prompt template, LoRA targets, model-folder errors."""

from __future__ import annotations

import re

import pytest
import torch

from cvitkit.errors import ConfigError, ModelPathError
from cvitkit.models import (
    PRESETS,
    build_tiny_llava,
    check_targets,
    count_parameters,
    load_model,
    lora_target_regex,
    matched_modules,
    render_vicuna_v1,
)
from tests.conftest import make_image


def _batch(processor, question="What colour is the box?", answer="red", size=32):
    prompt = render_vicuna_v1([("user", f"<image>\n{question}")], add_generation_prompt=True)
    image = make_image(size)
    batch = processor(text=[f"{prompt} {answer}</s>"], images=[image], return_tensors="pt")
    n_prompt = processor(text=[prompt], images=[image], return_tensors="pt")["input_ids"].shape[1]
    labels = batch["input_ids"].clone()
    labels[:, :n_prompt] = -100
    return batch, labels, prompt, image


def test_forward_loss_and_generate(micro_llava):
    model, processor = micro_llava
    batch, labels, prompt, image = _batch(processor)
    with torch.no_grad():
        out = model(**batch, labels=labels)
    vocab = len(processor.tokenizer)
    assert out.logits.shape == (1, batch["input_ids"].shape[1], vocab)
    # A random model is close to uniform: loss near ln(vocab).
    assert abs(out.loss.item() - torch.log(torch.tensor(float(vocab))).item()) < 1.5
    gen_in = processor(text=[prompt], images=[image], return_tensors="pt")
    with torch.no_grad():
        gen = model.generate(**gen_in, max_new_tokens=4, do_sample=False)
    assert gen.shape[0] == 1 and 1 <= gen.shape[1] - gen_in["input_ids"].shape[1] <= 4


def test_image_tokens_expand_to_patch_count(micro_llava):
    model, processor = micro_llava
    batch, *_ = _batch(processor)
    n_image = (batch["input_ids"] == processor.tokenizer.image_token_id).sum().item()
    assert n_image == PRESETS["micro"].num_image_tokens == 16
    assert model.config.image_token_index == processor.tokenizer.image_token_id


def test_save_load_round_trip_gives_identical_logits(micro_llava, micro_llava_dir):
    model, processor = micro_llava
    model2, processor2 = load_model(micro_llava_dir)
    batch, *_ = _batch(processor)
    batch2, *_ = _batch(processor2)
    assert torch.equal(batch["input_ids"], batch2["input_ids"])
    assert torch.equal(batch["pixel_values"], batch2["pixel_values"])
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, model2(**batch2).logits)
    assert type(processor2.image_processor).__name__ == "CLIPImageProcessorPil"


def test_same_seed_same_weights_other_seed_differs():
    a, _ = build_tiny_llava("micro", seed=3)
    b, _ = build_tiny_llava("micro", seed=3)
    c, _ = build_tiny_llava("micro", seed=4)
    wa, wb, wc = (m.model.language_model.layers[0].self_attn.q_proj.weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


@pytest.mark.parametrize("text", ["USER: <image>\nWhat is 12 + 7? ASSISTANT: 19</s>",
                                  "[0.12, 0.5, 0.33, 0.9]", "Click (0.25, 0.75) — naïve café"])
def test_tokenizer_round_trips_text_exactly(micro_llava, text):
    tok = micro_llava[1].tokenizer
    assert tok.decode(tok(text)["input_ids"]) == text


def test_tokenizer_splits_digits_and_image_runs(micro_llava):
    tok = micro_llava[1].tokenizer
    ids = tok("<image><image>2026")["input_ids"]
    assert ids[:2] == [tok.image_token_id] * 2
    assert [tok.decode([i]) for i in ids[2:]] == ["2", "0", "2", "6"]
    assert tok.padding_side == "left"


def test_chat_template_matches_vicuna_v1(micro_llava):
    processor = micro_llava[1]
    messages = [{"role": "system", "content": "SYS"}, {"role": "user", "content": "<image>\nQ?"},
                {"role": "assistant", "content": "A"}, {"role": "user", "content": "Q2"}]
    rendered = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    expected = "SYS USER: <image>\nQ? ASSISTANT: A</s>USER: Q2 ASSISTANT:"
    assert rendered == expected
    assert render_vicuna_v1([("user", "<image>\nQ?"), ("assistant", "A"), ("user", "Q2")], system="SYS",
                            add_generation_prompt=True) == expected


def test_preset_sizes():
    # Sizes quoted in the README; the language model dominates.
    sizes = {name: count_parameters(build_tiny_llava(name)[0])["total"] for name in ("tiny-3m", "tiny-20m")}
    assert 1.5e6 < sizes["tiny-3m"] < 4e6
    assert 12e6 < sizes["tiny-20m"] < 24e6


def test_bad_preset_and_config_are_clear_errors():
    with pytest.raises(ConfigError, match="unknown tiny model preset 'huge'.*micro"):
        build_tiny_llava("huge")
    with pytest.raises(ConfigError, match="multiple of patch_size"):
        build_tiny_llava("micro", image_size=30)
    with pytest.raises(ConfigError, match="unknown key 'text_hiden'.*Did you mean 'text_hidden'"):
        build_tiny_llava("micro", text_hiden=32)


# --- LoRA targets -------------------------------------------------------------------------------

@pytest.mark.parametrize("preset,per_layer", [("attention", 4), ("attention_qv", 2), ("ffn", 3), ("all_linear", 7)])
def test_lora_targets_cover_only_the_language_model(micro_llava, preset, per_layer):
    model = micro_llava[0]
    names = check_targets(model, lora_target_regex(preset))
    assert len(names) == per_layer * model.config.text_config.num_hidden_layers
    assert all(".language_model." in n for n in names)
    assert not any("vision_tower" in n or "projector" in n for n in names)


def test_peft_with_kit_targets_never_wraps_vision_tower(micro_llava):
    from peft import LoraConfig, get_peft_model

    model, _ = build_tiny_llava("micro")
    peft_model = get_peft_model(model, LoraConfig(r=2, target_modules=lora_target_regex("all_linear")))
    wrapped = [n for n, m in peft_model.named_modules() if hasattr(m, "lora_A")]
    assert wrapped and all("language_model" in n for n in wrapped)
    # The naive list form would have wrapped the CLIP tower's q/v projections: the kit guards against it.
    naive = matched_modules(micro_llava[0], r".*(q_proj|v_proj)")
    assert any("vision_tower" in n for n in naive)
    with pytest.raises(ConfigError, match="outside the language model"):
        check_targets(micro_llava[0], r".*(q_proj|v_proj)")


def test_lora_target_errors(micro_llava):
    with pytest.raises(ConfigError, match="unknown LoRA target preset"):
        lora_target_regex("everything")
    with pytest.raises(ConfigError, match="matches no linear layer"):
        check_targets(micro_llava[0], lora_target_regex(["qkv"]))
    assert re.fullmatch(lora_target_regex(["q_proj"]), "model.language_model.layers.0.self_attn.q_proj")


# --- model folders ------------------------------------------------------------------------------

def test_missing_model_folder_names_path_and_fix(tmp_path):
    missing = tmp_path / "llava-1.5-7b-hf"
    with pytest.raises(ModelPathError) as err:
        load_model(missing)
    msg = str(err.value)
    assert str(missing) in msg and "--model" in msg and "Nothing is downloaded" in msg


def test_folder_without_model_is_a_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(ModelPathError, match=r"holds no model: config.json is missing"):
        load_model(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelPathError, match="holds no weights"):
        load_model(tmp_path)


def test_file_instead_of_folder(tmp_path):
    f = tmp_path / "model.safetensors"
    f.write_bytes(b"")
    with pytest.raises(ModelPathError, match="is a file, not a folder"):
        load_model(f)


def test_corrupt_model_folder_is_a_clear_error(tmp_path, micro_llava_dir):
    import shutil

    shutil.copytree(micro_llava_dir, tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text("{ this is not json")
    with pytest.raises(ModelPathError, match="could not load a model from"):
        load_model(tmp_path / "m")


def test_bad_quantization_name():
    from cvitkit.models.loading import quantization_config

    with pytest.raises(ConfigError, match="quantization must be one of"):
        quantization_config("3bit")
