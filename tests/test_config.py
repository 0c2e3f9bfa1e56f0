"""YAML -> dataclass configs: unknown keys and wrong types fail with the key's path."""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from wavlm.config import ConfigError, apply_overrides, from_dict, load


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


@dataclass
class WithLists:
    betas: tuple[float, float] | list[float] = (0.9, 0.98)
    files: list[str] = field(default_factory=list)
    noise: str | None = None
    inner: Inner = field(default_factory=Inner)


def write_config(tmp_path, text: str):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("override, message", [
    # through a scalar: names the override, the value in the way and how to set it
    ("inner.steps.x=1", "override 'inner.steps.x=1': inner.steps is 10, not a mapping, so it has no key 'x'; "
                        "set it with inner.steps=VALUE"),
    # a list index: lists are replaced whole
    ("files.0=a", "override 'files.0=a': files is ['a', 'b'], not a mapping, so it has no key '0'; "
                  "a list is replaced as a whole (files=[...])"),
    ("inner.steps", "override 'inner.steps': expected key=value"),
    ("=3", "override '=3': expected key=value"),
    ("inner..lr=3", "override 'inner..lr=3': expected key=value"),
    ("inner.lr=[1", "override 'inner.lr=[1': the value is not valid YAML"),
    # an unknown key at depth and wrong types found by the dataclass name the override that set them
    ("inner.foo.bar=1", "c.yaml.inner: unknown key(s) ['foo'] for Inner; valid keys: ['lr', 'steps'] "
                        "(from the override 'inner.foo.bar=1')"),
    ("noise.x=1", "c.yaml.noise: expected a string, got {'x': 1} (from the override 'noise.x=1')"),
    ("inner=3", "c.yaml.inner: expected a mapping for Inner, got 3 (from the override 'inner=3')"),
    ("files=[a, 3]", "c.yaml.files.1: expected a string, got 3 (from the override 'files=[a, 3]')"),
    ("betas=[0.9, x]", "c.yaml.betas: expected a list of 2 (float, float) or a list of float, got [0.9, 'x']"),
])
def test_malformed_override_is_named(tmp_path, override, message):
    path = write_config(tmp_path, "files: [a, b]\ninner:\n  steps: 10\n")
    with pytest.raises(ConfigError) as e:
        load(WithLists, path, [override])
    assert message in str(e.value).replace(str(tmp_path) + "/", "")


def test_optional_and_list_fields(tmp_path):
    path = write_config(tmp_path, "files: [a, b]\n")
    cfg = load(WithLists, path, ["noise=data/noise", "betas=[0.9, 1]", "inner.steps=4"])
    assert cfg.noise == "data/noise" and cfg.betas == [0.9, 1.0] and cfg.files == ["a", "b"] and cfg.inner.steps == 4
    assert load(WithLists, path, ["noise=null"]).noise is None
    # an error not caused by an override does not blame one
    bad = write_config(tmp_path, "inner:\n  steps: many\n")
    with pytest.raises(ConfigError) as e:
        load(WithLists, bad, ["noise=x"])
    assert "c.yaml.inner.steps: expected an integer, got 'many'" in str(e.value) and "override" not in str(e.value)


def test_training_cli_reports_a_bad_override_without_a_traceback(tmp_path, env):
    import subprocess
    import sys

    from conftest import ROOT

    p = subprocess.run([sys.executable, "-m", "wavlm.bin.train_lm", "--config",
                        str(ROOT / "egs/librispeech/asr1/conf/debug/lm.yaml"), "--exp_dir", str(tmp_path / "exp"),
                        "trainer.max_updates.x=1"], env=env, capture_output=True, text=True)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "override 'trainer.max_updates.x=1': trainer.max_updates is 300, not a mapping" in p.stderr
