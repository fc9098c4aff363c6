"""Load a real multimodal LLM from a local folder, optionally quantised (8-bit or 4-bit QLoRA).

Nothing is downloaded: the folder must already hold a Hugging Face-format checkpoint
(``config.json``, ``*.safetensors`` and the processor/tokenizer files), e.g. ``llava-1.5-7b-hf``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from cvitkit.errors import ConfigError, ModelPathError

QUANTIZATION_CHOICES = ("none", "8bit", "4bit")

#: Modules kept in full precision under 4/8-bit. transformers 5.x matches these names from the start
#: of the module name or as a suffix, so the short forms "vision_tower" would NOT match
#: "model.vision_tower"; a user list also replaces the default, so ``lm_head`` must be listed again.
DEFAULT_SKIP_MODULES = ("model.vision_tower", "model.multi_modal_projector", "lm_head")

_FETCH_HINT = (
    "Nothing is downloaded at run time: copy a Hugging Face-format checkpoint there first, e.g. on a "
    "machine with internet `huggingface-cli download llava-hf/llava-1.5-7b-hf --local-dir <folder>`, "
    "then pass --model <folder> (or model.path in the profile)."
)


def check_model_folder(path: str | Path) -> Path:
    """Return ``path`` if it holds a loadable checkpoint, else raise :class:`ModelPathError`."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelPathError(f"model folder not found: {path}. {_FETCH_HINT}")
    if not path.is_dir():
        raise ModelPathError(f"model path is a file, not a folder: {path}. Pass the folder that holds config.json.")
    if not (path / "config.json").is_file():
        raise ModelPathError(
            f"{path} holds no model: config.json is missing. Pass the folder of a Hugging Face-format "
            f"checkpoint (config.json, *.safetensors, processor files). {_FETCH_HINT}"
        )
    weights = [*path.glob("*.safetensors"), *path.glob("*.safetensors.index.json"), *path.glob("*.bin")]
    if not weights:
        raise ModelPathError(
            f"{path} holds no weights: no *.safetensors (or *.bin) file next to config.json. "
            f"The download may be incomplete. {_FETCH_HINT}"
        )
    return path


def quantization_config(quantization: str, compute_dtype=None, skip_modules=DEFAULT_SKIP_MODULES):
    """A ``BitsAndBytesConfig`` for ``"8bit"``/``"4bit"`` (nf4, double quantisation), or None."""
    if quantization not in QUANTIZATION_CHOICES:
        raise ConfigError(f"quantization must be one of {QUANTIZATION_CHOICES}, got {quantization!r}.")
    if quantization == "none":
        return None
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ConfigError(
            f"quantization={quantization!r} needs bitsandbytes. Install the 'quant' extra: "
            "pip install -e '.[quant]' (./reproduce.sh does this), or set quantization: none."
        )
    import torch
    from transformers import BitsAndBytesConfig

    if compute_dtype is None:
        compute_dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=list(skip_modules))
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
        llm_int8_skip_modules=list(skip_modules),
    )


def _assert_vision_unquantised(model) -> None:
    quantised = [n for n, m in model.named_modules()
                 if type(m).__name__ in ("Linear4bit", "Linear8bitLt")
                 and ("vision_tower" in n or "multi_modal_projector" in n or n.endswith("lm_head"))]
    if quantised:
        raise ConfigError(
            f"these modules were quantised but must stay in full precision: {quantised[:3]}. "
            "Adjust skip_modules to the model's module names (print(model) shows them)."
        )


def load_model(path: str | Path, *, quantization: str = "none", dtype: str = "auto", device_map=None,
               gradient_checkpointing: bool = False, prepare_for_training: bool = False,
               skip_modules=DEFAULT_SKIP_MODULES):
    """Load ``(model, processor)`` from a local folder with the Auto classes.

    Parameters
    ----------
    path : folder of a Hugging Face-format image-text-to-text checkpoint.
    quantization : ``"none"``, ``"8bit"`` or ``"4bit"`` (nf4 + double quantisation; compute dtype
        bfloat16 on GPU, float32 on CPU). Vision tower, projector and ``lm_head`` stay unquantised.
    dtype : torch dtype name for unquantised weights (``"auto"`` keeps the checkpoint's).
    device_map : passed to ``from_pretrained``; defaults to ``"cpu"`` without CUDA and ``"auto"`` with it
        when quantising.
    gradient_checkpointing : trade compute for activation memory during training.
    prepare_for_training : for quantised models, run peft's ``prepare_model_for_kbit_training``
        (fp32 norms, input gradients) — needed before adding LoRA for QLoRA.
    """
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    path = check_model_folder(path)
    qconfig = quantization_config(quantization, skip_modules=skip_modules)
    kwargs = {}
    if qconfig is not None:
        kwargs["quantization_config"] = qconfig
        kwargs["device_map"] = device_map or ("auto" if torch.cuda.is_available() else "cpu")
    elif device_map is not None:
        kwargs["device_map"] = device_map
    if dtype != "auto":
        try:
            kwargs["dtype"] = getattr(torch, dtype)
        except AttributeError:
            raise ConfigError(f"unknown dtype {dtype!r}; use auto, float32, bfloat16 or float16.") from None
    try:
        model = AutoModelForImageTextToText.from_pretrained(str(path), **kwargs)
        processor = AutoProcessor.from_pretrained(str(path))
    except (OSError, ValueError, KeyError) as exc:
        raise ModelPathError(
            f"could not load a model from {path}: {exc}. The folder must hold an image-text-to-text "
            "checkpoint in Hugging Face format (e.g. llava-hf/llava-1.5-7b-hf) with its processor files."
        ) from exc
    if qconfig is not None:
        _assert_vision_unquantised(model)
    if prepare_for_training:
        enable_training_mode(model, gradient_checkpointing=gradient_checkpointing, quantized=qconfig is not None)
    elif gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model, processor


def enable_training_mode(model, *, gradient_checkpointing: bool = False, quantized: bool | None = None):
    """Freeze the base model and make it ready for adapters (QLoRA preparation when quantised)."""
    if quantized is None:
        quantized = bool(getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False))
    if quantized:
        from peft import prepare_model_for_kbit_training

        prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    else:
        for p in model.parameters():
            p.requires_grad_(False)
        if gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            model.enable_input_require_grads()
    return model
