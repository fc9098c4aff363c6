"""Named runs: a run id ``<method>`` or ``<method>__<variant>``, and what each profile trains.

Variants live with their method, in ``configs/methods/<method>.yaml``::

    variants:
      sparse:                       # run id: branchlora__sparse
        description: "+ sparse top-k routing (ablation step 2)"
        overrides: {share_a: true, top_k: 2, freeze_after_task: false, task_routers: false}
        model: {preset: tiny-20m}   # optional: another model preset
      diverse:
        data: {instructions: diverse}   # optional: DataConfig fields (its own data folder)
      seed1:
        train: {seed: 1}            # optional: TrainConfig fields (a repeat with another seed)

``configs/experiments.yaml`` lists, per profile, the runs the pipeline trains on each suite —
exactly the runs the paper tables need. Tables and notebooks refer to runs by these ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from cvitkit.config import from_dict, load_yaml
from cvitkit.errors import ConfigError
from cvitkit.profiles import REPO_ROOT

CONFIG_DIR = REPO_ROOT / "configs"
PLANS_FILE = CONFIG_DIR / "experiments.yaml"
METHOD_CONFIG_DIR = CONFIG_DIR / "methods"


VARIANT_KEYS = ("overrides", "model", "data", "train", "description")


@dataclass(frozen=True)
class RunSpec:
    """What a run id resolves to: the method, its variant's config overrides, model fields and data fields."""

    run_id: str
    method: str
    variant: str = ""
    overrides: dict = field(default_factory=dict)
    model: dict = field(default_factory=dict)
    description: str = ""
    data: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)


def method_file(method: str, config_dir: Path = METHOD_CONFIG_DIR) -> dict:
    """``configs/methods/<method>.yaml`` (empty when the method has none)."""
    path = config_dir / f"{method}.yaml"
    if not path.is_file():
        return {}
    data = load_yaml(path)
    unknown = set(data) - {"method", "description", "variants"}
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {sorted(unknown)}; allowed: method, description, variants.")
    if data.get("method", method) != method:
        raise ConfigError(f"{path}: declares method '{data['method']}' but the file is named for '{method}'.")
    return data


def variants(method: str, config_dir: Path = METHOD_CONFIG_DIR) -> dict[str, dict]:
    return dict(method_file(method, config_dir).get("variants") or {})


def resolve_run(run_id: str, config_dir: Path = METHOD_CONFIG_DIR) -> RunSpec:
    """``"lora_ft"`` → the method with its preset; ``"branchlora__sparse"`` → the declared variant."""
    from cvitkit.methods.base import get_method_class

    method, _, variant = run_id.partition("__")
    get_method_class(method)  # clear error for an unknown method
    if not variant:
        return RunSpec(run_id, method)
    declared = variants(method, config_dir)
    if variant not in declared:
        raise ConfigError(f"unknown run '{run_id}': no variant '{variant}' in configs/methods/{method}.yaml. "
                          f"Declared variants: {', '.join(sorted(declared)) or 'none'}.")
    spec = dict(declared[variant] or {})
    extra = set(spec) - set(VARIANT_KEYS)
    if extra:
        raise ConfigError(f"configs/methods/{method}.yaml: variant '{variant}' has unknown key(s) {sorted(extra)}; "
                          f"allowed: {', '.join(VARIANT_KEYS)}.")
    from cvitkit.data.config import DataConfig
    from cvitkit.train_config import TrainConfig

    where = f"configs/methods/{method}.yaml: variant '{variant}'"
    data = _check_section(spec.get("data") or {}, where, "data", DataConfig)
    train = _check_section(spec.get("train") or {}, where, "train", TrainConfig)
    return RunSpec(run_id, method, variant, spec.get("overrides") or {}, spec.get("model") or {},
                   spec.get("description", ""), data, train)


_SECTION_EXAMPLES = {"data": "{instructions: diverse}", "train": "{seed: 1}"}


def _check_section(values: dict, where: str, section: str, cls: type) -> dict:
    """A variant's ``data:`` or ``train:`` section, checked now (not when its run starts, hours into a
    pipeline) against the fields of ``cls``, the dataclass of the profile section it overrides."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: '{section}' must be a mapping of {section} settings, "
                          f"e.g. {_SECTION_EXAMPLES[section]}.")
    valid = [f.name for f in fields(cls)]
    unknown = sorted(set(values) - set(valid))
    if unknown:
        raise ConfigError(f"{where}: unknown {section} key(s) {unknown}. Fix: use fields of the profile's "
                          f"{section} section: {', '.join(valid)}.")
    try:
        from_dict(cls, values, source=f"{where}: {section}")
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    return dict(values)


def plan(profile: str, path: Path = PLANS_FILE) -> dict[str, list[str]]:
    """``{suite: [run ids]}`` the pipeline trains for ``profile`` (in order)."""
    data = load_yaml(path)
    plans = data.get("plans", {})
    if profile not in plans:
        raise ConfigError(f"{path.name}: no plan for profile '{profile}'. Plans: {', '.join(plans)}.")
    return {suite: list(runs) for suite, runs in plans[profile].items()}
