"""Config loading: strict keys, types, profiles."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from cvitkit.config import config_hash, from_dict, key_fields, load_yaml, option
from cvitkit.errors import ConfigError
from cvitkit.profiles import available_profiles, load_profile


@dataclass
class _Inner:
    rank: int = option(8, help="rank")
    lr: float = option(1e-4, help="lr")


@dataclass
class _Outer:
    name: str = option("x", help="name")
    inner: _Inner = option(help="inner", factory=_Inner)
    tags: list[str] = option(help="tags", factory=list)


def test_from_dict_builds_nested_and_coerces_floats():
    cfg = from_dict(_Outer, {"inner": {"rank": 4, "lr": "2e-4"}, "tags": ["a"]})
    assert cfg.inner.rank == 4 and cfg.inner.lr == 2e-4 and cfg.tags == ["a"]


def test_unknown_key_names_source_key_and_suggestion():
    with pytest.raises(ConfigError, match=r"my.yaml.inner: unknown key 'rnak'.*Did you mean 'rank'.*Valid keys: lr, rank"):
        from_dict(_Outer, {"inner": {"rnak": 4}}, source="my.yaml")


def test_wrong_type_is_reported():
    with pytest.raises(ConfigError, match=r"cfg.inner.rank: expected int, got str"):
        from_dict(_Outer, {"inner": {"rank": "four"}}, source="cfg")
    with pytest.raises(ConfigError, match="expected a list"):
        from_dict(_Outer, {"tags": "a"})


def test_config_hash_is_stable_and_sensitive():
    assert config_hash(_Outer()) == config_hash(_Outer())
    assert config_hash(_Outer()) != config_hash(_Outer(name="y"))


def test_bad_yaml_names_file(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_yaml(p)
    with pytest.raises(ConfigError, match="config file not found"):
        load_yaml(tmp_path / "nope.yaml")


def test_every_shipped_profile_loads():
    assert {"smoke", "mini", "full"} <= set(available_profiles())
    assert load_profile("smoke").model.source == "tiny"
    assert load_profile("mini").model.source == "base"
    full = load_profile("full", model_path="/models/llava")
    assert full.model.path == "/models/llava" and full.model.quantization == "4bit"


def test_full_profile_without_model_tells_how_to_fix():
    with pytest.raises(ConfigError, match="--model"):
        load_profile("full")


def test_unknown_profile():
    with pytest.raises(ConfigError, match="unknown profile 'tiny'.*Available"):
        load_profile("tiny")


def test_key_fields_leave_out_later_options_only_while_they_keep_their_default():
    @dataclass
    class Cfg:
        a: int = option(1, help="an original field")
        later: float = option(0.0, help="a field added after caches existed")

    assert key_fields(Cfg(), added_later=("later",)) == {"a": 1}
    assert key_fields(Cfg(a=2, later=0.5), added_later=("later",)) == {"a": 2, "later": 0.5}
    assert key_fields(Cfg(), added_later=()) == {"a": 1, "later": 0.0}
    # so a key hashed before the field existed is the key of the field left unset
    assert config_hash(key_fields(Cfg(), added_later=("later",))) == config_hash({"a": 1})
