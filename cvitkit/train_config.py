"""Training settings of a profile: the continual loop (``train:``) and the base model (``base:``).

Kept free of heavy imports so that :mod:`cvitkit.profiles` can load every profile cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass

from cvitkit.config import option
from cvitkit.errors import ConfigError


@dataclass
class TrainConfig:
    """Loop settings shared by every method (the ``train:`` section of a profile)."""

    batch_size: int = option(16, help="Samples per optimizer micro-step.")
    grad_accum: int = option(1, help="Micro-steps per optimizer step (keeps the effective batch on small GPUs).")
    eval_batch_size: int = option(32, help="Samples per generation batch.")
    max_new_tokens: int = option(0, help="Generation budget; 0 = longest reference answer of the task + 4.")
    max_grad_norm: float = option(1.0, help="Gradient clipping norm (0 disables).")
    mixed_precision: str = option("no", help="accelerate mixed precision: no, bf16 or fp16.")
    seed: int = option(0, help="Seed of data order, dropout and initialisations.")
    eval_initial: bool = option(False, help="Also evaluate every task before any training (stage 0).")
    eval_scope: str = option("auto", help="Tasks evaluated after each stage: seen, all, or auto "
                                          "(seen for task-incremental suites, all for streams).")
    max_eval_per_task: int = option(0, help="Evaluate at most this many test samples per task (0 = all).")
    system_prompt: str = option("", help="System text before USER in the vicuna_v1 template "
                                         "(the LLaVA-1.5 system prompt for real models).")
    log_every: int = option(25, help="Optimizer steps between loss log entries.")

    def __post_init__(self):
        if self.eval_scope not in ("auto", "seen", "all"):
            raise ConfigError(f"train.eval_scope must be auto, seen or all, got {self.eval_scope!r}.")
        if self.batch_size <= 0 or self.grad_accum <= 0:
            raise ConfigError("train.batch_size and train.grad_accum must be positive.")


@dataclass
class BaseModelConfig:
    """How the base model is pretrained (the ``base:`` section of a profile)."""

    suite: str = option("pretrain", help="Suite of the general mix the base model is trained on.")
    train_per_task: int = option(4000, help="Training samples per task of the pretraining suite.")
    test_per_task: int = option(100, help="Held-out samples per task, scored after pretraining.")
    epochs: float = option(3.0, help="Passes over the pretraining data.")
    lr: float = option(1e-3, help="Peak AdamW learning rate (cosine schedule with warm-up).")
    warmup_ratio: float = option(0.03, help="Fraction of steps of linear warm-up.")
    batch_size: int = option(32, help="Samples per step.")
    weight_decay: float = option(0.01, help="AdamW weight decay.")
    seed: int = option(0, help="Seed of initialisation and data order.")
    vision_suite: str = option("", help="Suite whose captioned images pretrain the vision tower first (stage 0, "
                                        "cvitkit/vision_pretrain.py); the tower then stays frozen. Empty: no stage 0, "
                                        "the tower trains with the rest on the base suite.")
    vision_train_per_task: int = option(800, help="Images per task of the vision suite.")
    vision_epochs: float = option(4.0, help="Passes over the vision suite's images.")
    vision_lr: float = option(1e-3, help="Peak AdamW learning rate of stage 0 (cosine with warm-up).")
    vision_batch_size: int = option(64, help="Images per stage-0 step.")
    vision_position_weight: float = option(0.0, help="Weight of stage 0's patch-position term (each patch predicts "
                                                     "its row and column, so the frozen tower keeps where things "
                                                     "are); 0: captions alone.")
    vision_object_weight: float = option(0.0, help="Weight of stage 0's patch-object term (each patch predicts the "
                                                   "kind of the drawn object covering it, or background, so the "
                                                   "frozen tower keeps what each thing is); 0: captions alone.")
    caption_every_domain: bool = option(False, help="The LLaVA stage also trains on stage 0's captioned images (every "
                                                    "domain the kit draws, the benchmarks' included), so the language "
                                                    "model has written every domain's kinds before continual tuning; "
                                                    "off: it sees the toy domain alone and every benchmark domain is "
                                                    "new to it. Needs vision_suite.")
