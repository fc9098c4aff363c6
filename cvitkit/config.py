"""Typed configuration: dataclasses with a help string per field, strict YAML/dict loading.

Every config in the kit is a ``@dataclass`` whose fields carry ``metadata={"help": ...}`` (see
:func:`option`). :func:`from_dict` builds one from plain data and rejects unknown keys with a message
that names the file, the key, the closest valid key and the full list, so a typo never silently
falls back to a default.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from cvitkit.errors import ConfigError

T = TypeVar("T")


def option(default: Any = dataclasses.MISSING, *, help: str, factory: Any = dataclasses.MISSING):  # noqa: A002
    """A dataclass field with a help string (shown by :func:`describe`)."""
    if factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=factory, metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})


def load_yaml(path: str | Path) -> dict:
    """Read a YAML mapping; a missing file or bad syntax raises :class:`ConfigError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}. Check the path (configs/ lists the shipped ones).")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc}). Fix the syntax at the position shown.") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values at the top level, got {type(data).__name__}.")
    return data


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _unwrap_optional(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _coerce(value: Any, tp: Any, where: str) -> Any:
    tp = _unwrap_optional(tp)
    if value is None:
        return None
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if dataclasses.is_dataclass(value):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__}, got {value!r}.")
        return from_dict(tp, value, source=where)
    origin = typing.get_origin(tp)
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):
        try:  # YAML reads "2e-4" as a string
            return float(value)
        except ValueError:
            pass
    if tp in (int, float, str, bool):
        if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
            raise ConfigError(f"{where}: expected {tp.__name__}, got {type(value).__name__} {value!r}.")
        return value
    if origin in (list, tuple) and isinstance(value, (list, tuple)):
        (inner, *_) = typing.get_args(tp) or (Any,)
        items = [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is list and not isinstance(value, (list, tuple)):
        raise ConfigError(f"{where}: expected a list, got {value!r}.")
    return value


def from_dict(cls: type[T], data: dict | None, *, source: str = "config") -> T:
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys and wrong types.

    ``source`` names the file or section in error messages (e.g. ``configs/profiles/mini.yaml:train``).
    """
    data = dict(data or {})
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(str(key), fields, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(
            f"{source}: unknown key '{key}' for {cls.__name__}.{hint} Valid keys: {', '.join(sorted(fields))}."
        )
    types_ = _field_types(cls)
    kwargs = {k: _coerce(v, types_[k], f"{source}.{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required field is missing
        raise ConfigError(f"{source}: {exc}. Add the missing key.") from exc


def to_dict(obj: Any) -> dict:
    """Plain-data view of a dataclass config (JSON/YAML serialisable)."""
    return json.loads(json.dumps(dataclasses.asdict(obj), default=str))


def config_hash(obj: Any, length: int = 12) -> str:
    """Stable short hash of a config (dataclass or mapping), used to key caches and run folders."""
    data = to_dict(obj) if dataclasses.is_dataclass(obj) else obj
    blob = json.dumps(data, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def key_fields(obj: Any, added_later: tuple[str, ...]) -> dict:
    """``obj`` (a dataclass) as a dict for a cache key, leaving out each field of ``added_later`` that
    still has its default: an option added after caches existed, left unset, keeps their keys."""
    values = dataclasses.asdict(obj)
    for f in dataclasses.fields(obj):
        if f.name in added_later and values[f.name] == f.default:
            del values[f.name]
    return values


def describe(cls: type) -> str:
    """One line per field: name, default and help string (for ``--help`` texts and notebooks)."""
    lines = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else "<required>"
        )
        lines.append(f"{f.name} = {default!r}: {f.metadata.get('help', '')}")
    return "\n".join(lines)
