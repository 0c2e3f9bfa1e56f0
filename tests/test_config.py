"""YAML -> dataclass configs: unknown keys and wrong types fail with the key's path."""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from wavlm.config import ConfigError, apply_overrides, from_dict


@dataclass
class Inner:
    lr: float = 1e-3
    steps: int = 10


@dataclass
class Outer:
    name: str = "x"
    flag: bool = False
    inner: Inner = field(default_factory=Inner)


def test_exponent_without_dot_is_a_float():
    # YAML 1.1 reads 5e-4 as the string "5e-4"; a float field takes it as 0.0005
    cfg = from_dict(Outer, apply_overrides({}, ["inner.lr=5e-4", "inner.steps=3"]))
    assert cfg.inner.lr == pytest.approx(5e-4) and isinstance(cfg.inner.lr, float)
    assert cfg.inner.steps == 3


@pytest.mark.parametrize("data, where", [
    ({"inner": {"lr": "fast"}}, "config.inner.lr"),
    ({"inner": {"steps": 2.5}}, "config.inner.steps"),
    ({"flag": "yes please"}, "config.flag"),
    ({"name": 3}, "config.name"),
    ({"inner": {"lrr": 1.0}}, "config.inner"),
])
def test_wrong_type_or_key_names_the_key(data, where):
    with pytest.raises(ConfigError, match=where.replace(".", r"\.")):
        from_dict(Outer, data)


def test_empty_override_is_the_empty_string():
    assert from_dict(Outer, apply_overrides({"name": "x"}, ["name="])).name == ""
