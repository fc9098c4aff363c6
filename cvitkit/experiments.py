"""Named runs: a run id ``<method>`` or ``<method>__<variant>`` and what each profile trains.

``configs/experiments.yaml`` defines the variants (a method plus config overrides, and optionally a
different model preset) and, per profile, the runs the pipeline trains on each suite — exactly the
runs the paper tables need. Tables and notebooks refer to runs by these ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cvitkit.config import load_yaml
from cvitkit.errors import ConfigError
from cvitkit.profiles import REPO_ROOT

EXPERIMENTS_FILE = REPO_ROOT / "configs" / "experiments.yaml"


@dataclass(frozen=True)
class RunSpec:
    run_id: str
    method: str
    variant: str = ""
    overrides: dict = field(default_factory=dict)
    model: dict = field(default_factory=dict)
    description: str = ""


def _load(path: Path = EXPERIMENTS_FILE) -> dict:
    data = load_yaml(path)
    unknown = set(data) - {"variants", "plans"}
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s) {sorted(unknown)}; expected 'variants' and 'plans'.")
    return data


def resolve_run(run_id: str, path: Path = EXPERIMENTS_FILE) -> RunSpec:
    """``"lora_ft"`` → the method with its preset; ``"branchlora__sparse"`` → the declared variant."""
    from cvitkit.methods.base import get_method_class

    if "__" not in run_id:
        get_method_class(run_id)  # clear error for an unknown method
        return RunSpec(run_id, run_id)
    variants = _load(path).get("variants", {})
    if run_id not in variants:
        raise ConfigError(f"unknown run '{run_id}': not declared under 'variants' in {path.name}. "
                          f"Declared: {', '.join(sorted(variants))}.")
    spec = dict(variants[run_id])
    method, variant = run_id.split("__", 1)
    extra = set(spec) - {"overrides", "model", "description"}
    if extra:
        raise ConfigError(f"{path.name}: variant '{run_id}' has unknown key(s) {sorted(extra)}; "
                          "allowed: overrides, model, description.")
    get_method_class(method)
    return RunSpec(run_id, method, variant, spec.get("overrides", {}) or {}, spec.get("model", {}) or {},
                   spec.get("description", ""))


def plan(profile: str, path: Path = EXPERIMENTS_FILE) -> dict[str, list[str]]:
    """``{suite: [run ids]}`` the pipeline trains for ``profile`` (in order)."""
    plans = _load(path).get("plans", {})
    if profile not in plans:
        raise ConfigError(f"{path.name}: no plan for profile '{profile}'. Plans: {', '.join(plans)}.")
    return {suite: list(runs) for suite, runs in plans[profile].items()}
