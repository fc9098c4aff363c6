"""The method (strategy) interface every continual-learning method implements.

A method owns the adapted model and takes part in the trainer's loop through a small lifecycle
(Avalanche's vocabulary): ``setup`` once, then for every experience (a task, or a chunk of a
stream) ``before_experience`` → training steps (``prepare_batch`` → forward → ``compute_loss`` →
``after_step``) → ``after_experience``; at evaluation ``prepare_batch(training=False)`` and
``generate``. Everything a method learns beyond the adapter weights is returned by ``state`` as
tensors plus JSON, so a run can resume after any experience.

A new method is one file in this package that subclasses :class:`Method`, declares a config
dataclass and calls :func:`register_method`; nothing else needs to change.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from cvitkit.adapters.state import TRAINABLE_PARTS
from cvitkit.config import from_dict, option
from cvitkit.errors import ConfigError
from cvitkit.lm_loss import answer_inputs, answer_loss

PROJECTOR = "multi_modal_projector"


@dataclass
class MethodConfig:
    """Fields every method shares. Defaults are the papers' scale; ``mini_preset`` scales them down."""

    rank: int = option(128, help="Total LoRA rank r (split across experts where a method has experts).")
    alpha: float = option(256, help="LoRA alpha; the scaling is alpha / r with the total rank r.")
    dropout: float = option(0.05, help="Dropout on the adapter input.")
    targets: str = option("all_linear", help="LoRA target preset in the language model: attention, "
                                             "attention_qv, ffn or all_linear.")
    train_projector: bool = option(True, help="Train the multimodal projector alongside the adapters.")
    lr: float = option(2e-4, help="Learning rate of adapters and routers.")
    projector_lr: float = option(2e-5, help="Learning rate of the projector.")
    epochs: float = option(1.0, help="Epochs per task or chunk (fractions allowed).")
    schedule: str = option("cosine", help="Learning-rate schedule per experience: cosine or constant.")
    warmup_ratio: float = option(0.03, help="Fraction of an experience's steps used for linear warm-up.")
    weight_decay: float = option(0.0, help="AdamW weight decay (0 in all four papers).")

    #: Overrides for tiny models (``mini``/``smoke`` profiles); subclasses extend it. Dropout is off at
    #: this scale: on a CPU the dropout masks cost about a fifth of a training step.
    mini_preset: ClassVar[dict] = {"rank": 32, "alpha": 64, "dropout": 0.0, "lr": 1e-3, "projector_lr": 1e-4}

    def __post_init__(self):
        if self.schedule not in ("cosine", "constant"):
            raise ConfigError(f"schedule must be 'cosine' or 'constant', got {self.schedule!r}.")
        if self.rank <= 0 or self.epochs <= 0:
            raise ConfigError("rank and epochs must be positive.")

    @classmethod
    def from_preset(cls, preset: str = "paper", overrides: dict | None = None, source: str = "method config"):
        """``paper`` (the dataclass defaults), ``mini``, or ``smoke`` (``mini`` refined by ``smoke_preset``,
        which only shortens what would dominate a smoke run), then ``overrides`` (strict keys)."""
        if preset not in ("paper", "mini", "smoke"):
            raise ConfigError(f"{source}: preset must be 'paper', 'mini' or 'smoke', got {preset!r}.")
        values = {}
        names = {"paper": (), "mini": ("mini_preset",), "smoke": ("mini_preset", "smoke_preset")}[preset]
        for name in names:
            for klass in reversed(cls.__mro__):  # parents first, so subclasses refine the base preset
                values.update(vars(klass).get(name, {}))
        values.update(overrides or {})
        return from_dict(cls, values, source=source)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class Method:
    """Base class: single-adapter defaults that subclasses override where they differ."""

    name: ClassVar[str] = ""
    config_class: ClassVar[type[MethodConfig]] = MethodConfig
    #: Protocols the method supports: "task_incremental" and/or "stream".
    protocols: ClassVar[tuple[str, ...]] = ("task_incremental", "stream")
    #: True when the method trains once on the union of all tasks (multitask upper bound).
    joint: ClassVar[bool] = False
    #: False for methods that never train (zero-shot).
    trains: ClassVar[bool] = True

    def __init__(self, config: MethodConfig, suite=None, seed: int = 0):
        self.config = config
        self.suite = suite
        self.seed = seed
        self.model = None
        self.processor = None
        self.experience_index = -1
        #: Number of experiences in the run (set by the trainer before the first one).
        self.n_experiences: int | None = None

    # -- lifecycle --------------------------------------------------------------------------------
    def setup(self, model, processor):
        """Wrap the frozen base model with this method's adapters; returns the model to train."""
        self.model, self.processor = model, processor
        return model

    def before_experience(self, experience) -> None:
        self.experience_index = experience.index

    def before_training(self, experience, optimizer_steps: int) -> None:
        """Called once the experience's length is known (CRAM's warm-up is a fraction of it)."""

    def training_records(self, experience) -> list[dict]:
        """The records trained on in this experience (replay adds its buffer here)."""
        return experience.records

    def prepare_batch(self, batch: dict, training: bool) -> dict:
        """Set routing state for the batch and return the model's keyword inputs."""
        inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "pixel_values") if k in batch}
        if training:  # logits only where an answer token is predicted (cvitkit.lm_loss)
            inputs.update(answer_inputs(self.model, batch["labels"]))
        return inputs

    def compute_loss(self, inputs: dict, outputs, batch: dict) -> tuple[torch.Tensor, dict]:
        """Total loss and a dict of its logged parts; default: the LM loss on answer tokens."""
        loss = answer_loss(outputs, batch["labels"], inputs)
        return loss, {"lm": loss.detach().item()}

    def before_optimizer_step(self) -> None:
        """Gradients are complete (accumulation done), the optimizer has not stepped yet."""

    def after_step(self) -> None:
        """After every optimizer step (EMA updates, for example)."""

    def after_experience(self, experience, records: list[dict]) -> None:
        """After training on an experience (freeze, consolidate, compute Fisher, ...)."""

    @torch.no_grad()
    def generate(self, inputs: dict, batch: dict, **generate_kwargs) -> tuple[torch.Tensor, list[dict]]:
        """Greedy generation; returns new token ids and per-sample routing metadata."""
        out = self.model.generate(**inputs, **generate_kwargs)
        return out[:, inputs["input_ids"].shape[1]:], [{} for _ in range(out.shape[0])]

    # -- optimisation -----------------------------------------------------------------------------
    def param_groups(self) -> list[dict]:
        """Trainable parameters split into adapter and projector groups with their learning rates; a vision
        tower or output head trained in full (the probe's ``--train-tower``, ``--train-head``) is a group of
        its own at the projector's rate, the rate of the other pretrained module trained in place."""
        groups = {name: [] for name in ("adapter", PROJECTOR, *TRAINABLE_PARTS)}
        for name, p in self.model.named_parameters():
            if p.requires_grad:
                groups[next((part for part in (PROJECTOR, *TRAINABLE_PARTS) if part in name), "adapter")].append(p)
        return [{"params": params, "lr": self.config.lr if name == "adapter" else self.config.projector_lr,
                 "name": "projector" if name == PROJECTOR else name}
                for name, params in groups.items() if params]

    def lr_schedule(self, experience) -> tuple[str, float]:
        """(schedule, warm-up ratio) for this experience; StrLoRA switches after the first chunk."""
        return self.config.schedule, self.config.warmup_ratio

    # -- state ------------------------------------------------------------------------------------
    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Method state beyond the adapter weights: (tensors, JSON-serialisable metadata)."""
        return {}, {}

    def load_state(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        """Restore what :meth:`state` returned, on a model freshly set up for this method."""

    def prepare_for_resume(self, finished: list) -> None:
        """Before loading a checkpoint: rebuild what grows with experiences (adapters, routers, buffers).

        ``finished`` lists the experiences already completed, in order.
        """

    def statistics(self) -> dict[str, Any]:
        """Routing statistics and anything else worth saving after an experience."""
        return {}


METHODS: dict[str, type[Method]] = {}


def register_method(cls: type[Method]) -> type[Method]:
    """Class decorator: make a method available by its ``name`` (refuses clashes)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} needs a non-empty 'name'")
    if cls.name in METHODS and METHODS[cls.name] is not cls:
        raise ValueError(f"method name '{cls.name}' is already registered by {METHODS[cls.name].__name__}")
    METHODS[cls.name] = cls
    return cls


def _import_all_methods() -> None:
    import cvitkit.methods as package

    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")


def available_methods() -> list[str]:
    _import_all_methods()
    return sorted(METHODS)


def get_method_class(name: str) -> type[Method]:
    if name not in METHODS:
        _import_all_methods()
    if name not in METHODS:
        raise ConfigError(f"unknown method '{name}'. Available methods: {', '.join(sorted(METHODS))}.")
    return METHODS[name]


def build_method(name: str, preset: str = "paper", overrides: dict | None = None, suite=None, seed: int = 0) -> Method:
    """Instantiate method ``name`` with its config from ``preset`` plus ``overrides``."""
    cls = get_method_class(name)
    config = cls.config_class.from_preset(preset, overrides, source=f"method '{name}'")
    method = cls(config, suite=suite, seed=seed)
    if suite is not None and suite.protocol not in cls.protocols:
        raise ConfigError(f"method '{name}' supports {cls.protocols} protocols, but suite '{suite.name}' is "
                          f"'{suite.protocol}'. Pick a method made for this protocol.")
    return method
