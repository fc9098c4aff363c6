"""Zero-shot: the base model evaluated on every task without any continual tuning (one row)."""

from __future__ import annotations

from dataclasses import dataclass

from cvitkit.methods.base import Method, MethodConfig, register_method


@dataclass
class ZeroShotConfig(MethodConfig):
    """No parameters are trained; the fields of :class:`MethodConfig` are ignored."""


@register_method
class ZeroShot(Method):
    name = "zero_shot"
    config_class = ZeroShotConfig
    trains = False
