"""Profiles: ``smoke``, ``mini`` and ``full`` are configs of one code path (configs/profiles/*.yaml)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cvitkit.config import from_dict, load_yaml, option
from cvitkit.data.config import DataConfig
from cvitkit.errors import ConfigError
from cvitkit.models.spec import ModelConfig
from cvitkit.train_config import BaseModelConfig, TrainConfig

REPO_ROOT = Path(__file__).resolve().parent.parent
PROFILE_DIR = REPO_ROOT / "configs" / "profiles"


@dataclass
class Profile:
    """Scale of a run: which model, which suites, how much data and training."""

    name: str = option(help="Profile name (smoke, mini, full).")
    description: str = option("", help="One line shown by ./reproduce.sh stages.")
    model: ModelConfig = option(help="The multimodal LLM to adapt.", factory=ModelConfig)
    suites: list[str] = option(help="Suites the pipeline runs, in order.", factory=list)
    data_root: str = option("", help="Root of the real benchmark files (full profile only).")
    data: DataConfig = option(help="Synthetic data sizes, resolution, seed and stream settings.", factory=DataConfig)
    train: TrainConfig = option(help="The continual training loop: batch, accumulation, evaluation.",
                                factory=TrainConfig)
    base: BaseModelConfig = option(help="How the kit pretrains its tiny base model (model.source: base).",
                                   factory=BaseModelConfig)

    @property
    def results_dir(self) -> Path:
        """``results/<profile>`` (small, committed outputs); ``CVITKIT_RESULTS`` moves the root."""
        return Path(os.environ.get("CVITKIT_RESULTS", REPO_ROOT / "results")) / self.name


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def load_profile(name: str, **overrides) -> Profile:
    """Load ``configs/profiles/<name>.yaml``; ``overrides`` replace top-level keys (e.g. ``data_root``)."""
    path = PROFILE_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown profile '{name}': no {path}. Available: {', '.join(available_profiles())}.")
    data = load_yaml(path)
    data.setdefault("name", name)
    for key, value in overrides.items():
        if value in (None, ""):
            continue
        if key == "model_path":
            data.setdefault("model", {}).update(source="path", path=str(value))
        else:
            data[key] = value
    return from_dict(Profile, data, source=str(path.relative_to(REPO_ROOT)))
