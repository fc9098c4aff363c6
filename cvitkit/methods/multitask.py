"""Multitask (joint) training: one LoRA trained on the union of all tasks — the usual upper bound.

There is a single stage, so the accuracy matrix has one row, evaluated on every task. ACC (= MFN)
is that row's mean; the kit reports the same value as MAA (a joint model has no sequence to average
over) and leaves BWT undefined. BranchLoRA's paper lists a multitask MAA only; how it was computed
there is not stated.
"""

from __future__ import annotations

from dataclasses import dataclass

from cvitkit.methods.base import register_method
from cvitkit.methods.lora_ft import LoraFT, LoraFTConfig


@dataclass
class MultitaskConfig(LoraFTConfig):
    """Same adapter as LoRA-FT; each sample is seen as many times as in a sequential run."""


@register_method
class Multitask(LoraFT):
    name = "multitask"
    config_class = MultitaskConfig
    joint = True
    protocols = ("task_incremental",)
