"""YAML configs read into dataclasses that reject unknown keys, so a typo fails loudly."""
from __future__ import annotations

import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config that does not match its dataclass; the message names the file and the key.
    `keys`: the dotted config keys at fault (to find the override that set them)."""

    def __init__(self, message: str, keys: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.keys = keys


def from_dict(cls: type[T], data: dict[str, Any] | None, where: str = "config") -> T:
    """Build dataclass `cls` from a dict; nested dataclass fields are built recursively."""
    return _build(cls, data, where, "")


def _build(cls: type[T], data: Any, where: str, key: str) -> T:
    here = f"{where}.{key}" if key else where
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"{here}: expected a mapping for {cls.__name__}, got {data!r}", (key,))
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{here}: unknown key(s) {unknown} for {cls.__name__}; valid keys: {sorted(fields)}",
                          tuple(_join(key, u) for u in unknown))
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        sub = _dataclass_of(hints[name])
        if sub and isinstance(value, dict):
            kwargs[name] = _build(sub, value, where, _join(key, name))
        else:
            kwargs[name] = _check(hints[name], value, where, _join(key, name))
    try:
        return cls(**kwargs)
    except TypeError as e:  # e.g. a required field is missing
        raise ConfigError(f"{here}: {e}", (key,)) from None


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def _check(hint: Any, value: Any, where: str, key: str) -> Any:
    """Check a value against its field's type: float/int/bool/str, X | None, list[X], tuple[X, ...],
    dict; other types are not checked. YAML 1.1 reads `5e-4` (no dot) as a string; such a string is
    accepted for a float field, anything else of the wrong type is an error."""
    def wrong(expected: str) -> ConfigError:
        return ConfigError(f"{where}.{key}: expected {expected}, got {value!r}", (key,))

    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if isinstance(hint, types.UnionType) or origin is typing.Union:
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for a in options:
            try:
                return _check(a, value, where, key)
            except ConfigError as e:
                errors.append(e)
        raise errors[0] if len(errors) == 1 else wrong(_describe(hint))
    if dataclasses.is_dataclass(hint):
        raise wrong(f"a mapping for {hint.__name__}")
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise wrong("a number")
    if hint is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise wrong("an integer")
    if hint is bool and not isinstance(value, bool):
        raise wrong("true or false")
    if hint is str and not isinstance(value, str):
        raise wrong("a string")
    if (hint is dict or origin is dict) and not isinstance(value, dict):
        raise wrong("a mapping")
    if hint is list or origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise wrong(_describe(hint))
        if origin is tuple and args and args[-1] is not Ellipsis and len(value) != len(args):
            raise wrong(_describe(hint))
        elem = (lambda i: args[0]) if origin is list or (args and args[-1] is Ellipsis) else (lambda i: args[i])
        if args:
            return [_check(elem(i), v, where, f"{key}.{i}") for i, v in enumerate(value)]
    return value


def _describe(hint: Any) -> str:
    """`tuple[float, float] | list[float]` -> 'a list like [float, float] or [float, ...]'."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if isinstance(hint, types.UnionType) or origin is typing.Union:
        return " or ".join(_describe(a) for a in args if a is not type(None))
    if origin is list:
        return f"a list of {_name(args[0])}" if args else "a list"
    if origin is tuple:
        return f"a list of {len(args)} ({', '.join(_name(a) for a in args)})"
    return f"a {_name(hint)}"


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", str(hint))


def _dataclass_of(hint: Any) -> type | None:
    if dataclasses.is_dataclass(hint):
        return hint
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        for arg in typing.get_args(hint):
            if dataclasses.is_dataclass(arg):
                return arg
    return None


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `a.b.c=value` overrides (value parsed as YAML) to a nested dict. An override may add keys
    (the dataclass then rejects unknown ones) but cannot go through a value that is not a mapping."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise ConfigError(f"override {item!r}: expected key=value with a dotted key (e.g. trainer.lr=1e-4)")
        node = data
        for depth, p in enumerate(parts[:-1], 1):
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                at = ".".join(parts[:depth])
                hint = (f"a list is replaced as a whole ({at}=[...]), not item by item" if isinstance(node, list)
                        else f"set it with {at}=VALUE")
                raise ConfigError(f"override {item!r}: {at} is {node!r}, not a mapping, so it has no key "
                                  f"{parts[depth]!r}; {hint}", (at,))
        try:
            node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else ""  # `key=` sets the empty string
        except yaml.YAMLError as e:
            raise ConfigError(f"override {item!r}: the value is not valid YAML: {e}") from None
    return data


def load(cls: type[T], path: str | os.PathLike, overrides: list[str] | None = None) -> T:
    """Read `path` (plus `key=value` overrides) into `cls`; an error caused by an override names it."""
    overrides = overrides or []
    data = apply_overrides(load_yaml(path), overrides)
    try:
        return from_dict(cls, data, str(path))
    except ConfigError as e:
        culprits = [o for o in overrides if any(_overlaps(o.partition("=")[0].strip(), k) for k in e.keys)]
        if not culprits:
            raise
        raise ConfigError(f"{e} (from the override {' '.join(map(repr, culprits))})", e.keys) from None


def _overlaps(a: str, b: str) -> bool:
    """Whether dotted keys `a` and `b` are the same or one holds the other."""
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def dump(obj: Any) -> str:
    return yaml.safe_dump(to_dict(obj), sort_keys=False)
