"""The ``data:`` section of a profile (:class:`DataConfig`).

Kept free of heavy imports: :mod:`cvitkit.profiles` imports it, and everything imports profiles.
"""

from __future__ import annotations

from dataclasses import dataclass

from cvitkit.config import option
from cvitkit.errors import ConfigError

#: Keys a per-suite size override may set (``suite_sizes: {pretrain: {train_per_task: 4000}}``).
SIZE_KEYS = ("train_per_task", "test_per_task", "stream_chunk_size")
CHECK_IMAGES = ("none", "exists", "open")
#: Styles of the training instructions (``cvitkit.data.synthetic.instructions``).
INSTRUCTION_STYLES = ("default", "diverse")


@dataclass
class DataConfig:
    """How much synthetic data to generate, at which resolution, and how to check data files."""

    train_per_task: int = option(24, help="Training samples generated per task (synthetic suites).")
    test_per_task: int = option(8, help="Test (evaluation) samples generated per task (synthetic suites).")
    image_size: int = option(64, help="Side of the generated square images in pixels; use the model's "
                                      "input resolution (tiny models: 64; works from 32 to 448).")
    seed: int = option(0, help="Generation seed. Same seed and config give byte-identical files.")
    stream_chunk_size: int = option(12, help="Training samples per chunk of a stream suite (StrCVIT analogue).")
    stream_lengths: list[int] = option(help="Stream lengths (number of chunks) to build for stream suites.",
                                       factory=lambda: [15, 20, 25])
    workers: int = option(1, help="Processes used to draw images; the output is identical for any value.")
    suite_sizes: dict = option(help="Per-suite overrides of train_per_task / test_per_task / "
                                    "stream_chunk_size, e.g. {pretrain: {train_per_task: 4000}}.", factory=dict)
    check_images: str = option("exists", help="Image check when loading files: none, exists (stat every "
                                              "image) or open (decode every image; slow on real data).")
    instructions: str = option("default", help="Training-instruction style: default, or diverse (about ten "
                                               "phrasings per question type; real data: CoIN's Instruction_Type2 "
                                               "training files). Test records are the same in both styles. Meant "
                                               "for a run variant's data: section; built in its own data folder.")

    def __post_init__(self):
        for key in ("train_per_task", "test_per_task", "stream_chunk_size", "workers"):
            if getattr(self, key) < 1:
                raise ConfigError(f"data.{key} must be >= 1, got {getattr(self, key)}.")
        if not 16 <= self.image_size <= 1024:
            raise ConfigError(f"data.image_size must be between 16 and 1024 pixels, got {self.image_size}.")
        if not self.stream_lengths or any(n < 2 for n in self.stream_lengths):
            raise ConfigError(f"data.stream_lengths must list chunk counts >= 2, got {self.stream_lengths}.")
        if self.instructions not in INSTRUCTION_STYLES:
            raise ConfigError(f"data.instructions must be one of {', '.join(INSTRUCTION_STYLES)}, "
                              f"got {self.instructions!r}.")
        if self.check_images not in CHECK_IMAGES:
            raise ConfigError(f"data.check_images must be one of {CHECK_IMAGES}, got {self.check_images!r}.")
        for suite, sizes in self.suite_sizes.items():
            if not isinstance(sizes, dict):
                raise ConfigError(f"data.suite_sizes.{suite} must be a mapping of {SIZE_KEYS} to integers.")
            for key, value in sizes.items():
                if key not in SIZE_KEYS:
                    raise ConfigError(f"data.suite_sizes.{suite}: unknown key '{key}'. "
                                      f"Valid keys: {', '.join(SIZE_KEYS)}.")
                if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                    raise ConfigError(f"data.suite_sizes.{suite}.{key} must be a positive integer, got {value!r}.")

    def sizes_for(self, suite: str) -> dict[str, int]:
        """``train_per_task``, ``test_per_task`` and ``stream_chunk_size`` for ``suite`` (overrides applied)."""
        sizes = {key: getattr(self, key) for key in SIZE_KEYS}
        sizes.update(self.suite_sizes.get(suite, {}))
        return sizes
