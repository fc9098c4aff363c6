"""Models: tiny LLaVA from configs, real-model loading (optionally 4-bit), LoRA target selection."""

from cvitkit.models.loading import DEFAULT_SKIP_MODULES, check_model_folder, enable_training_mode, load_model
from cvitkit.models.prompt import render_vicuna_v1
from cvitkit.models.targets import TARGET_PRESETS, check_targets, lora_target_regex, matched_modules
from cvitkit.models.tiny import PRESETS, TinyLlavaConfig, build_tiny_llava, count_parameters

__all__ = [
    "DEFAULT_SKIP_MODULES", "PRESETS", "TARGET_PRESETS", "TinyLlavaConfig", "build_tiny_llava", "check_model_folder",
    "check_targets", "count_parameters", "enable_training_mode", "load_model", "lora_target_regex",
    "matched_modules", "render_vicuna_v1",
]
