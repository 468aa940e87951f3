"""Typed dataclass configurations <-> YAML, with ``key=value`` overrides.

A configuration is a tree of ``@dataclass`` classes whose fields are annotated with
``bool``, ``int``, ``float``, ``str``, ``Path``, ``Literal[...]``, ``X | None``,
``list[X]``, ``tuple[X, ...]``, ``dict[str, X]`` or another dataclass. :func:`from_dict`
checks a plain mapping (as read from YAML) against that tree and builds the objects:

* unknown keys raise :class:`~harmonykit.errors.ConfigError` naming the dotted key and the
  valid ones; missing required fields, wrong types and ``Literal`` values outside the
  allowed set do too;
* numbers written in forms YAML 1.1 reads as strings (``2e-4``, ``40e3``) are accepted for
  ``float`` / ``int`` fields; ``int`` fields accept floats with an integral value;
* ``Path`` fields expand ``~``;
* a dataclass's ``__post_init__`` may raise ``ConfigError`` for value checks.

:func:`load_config` reads a YAML file, applies dotted overrides (``optim.lr=1e-4``,
``data.images=~/Pictures``; the value is parsed as a YAML scalar or flow collection, e.g.
``optim.milestones=[10,20]``) and builds the dataclass. :func:`dump_config` writes it back.

>>> from dataclasses import dataclass, field
>>> @dataclass
... class Optim:
...     lr: float = 1e-3
...     milestones: list[int] = field(default_factory=list)
>>> from_dict(Optim, apply_overrides({}, ["lr=2e-4", "milestones=[5,8]"], Optim))
Optim(lr=0.0002, milestones=[5, 8])
>>> apply_overrides({}, ["lrr=1"], Optim)
Traceback (most recent call last):
...
harmonykit.errors.ConfigError: unknown key 'lrr' (valid keys under '<root>': lr, milestones)
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

from harmonykit.errors import ConfigError

__all__ = [
    "from_dict",
    "to_dict",
    "apply_overrides",
    "parse_override",
    "load_config",
    "dump_config",
    "config_keys",
]

T = TypeVar("T")

_NONE = type(None)


# --------------------------------------------------------------------------- type helpers
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    """``X | None`` -> ``(X, True)``; other types -> ``(tp, False)``."""
    origin = typing.get_origin(tp)
    if origin is Union or origin is types.UnionType:
        args = [a for a in typing.get_args(tp) if a is not _NONE]
        optional = len(args) < len(typing.get_args(tp))
        if len(args) == 1:
            return args[0], optional
        return Union[tuple(args)], optional  # noqa: UP007  (a runtime union of several types)
    return tp, False


def _dataclass_of(tp: Any) -> type | None:
    inner, _ = _unwrap_optional(tp)
    return inner if dataclasses.is_dataclass(inner) and isinstance(inner, type) else None


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "").replace("pathlib.", "")


def config_keys(cls: type) -> list[str]:
    """Field names of a dataclass, in declaration order."""
    return [f.name for f in dataclasses.fields(cls)]


def _where(prefix: str) -> str:
    return prefix or "<root>"


# --------------------------------------------------------------------------- conversion
def _convert(tp: Any, value: Any, key: str) -> Any:
    """Check/convert ``value`` for a field of type ``tp``; ``key`` is the dotted name."""
    if tp is Any:
        return value
    inner, optional = _unwrap_optional(tp)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{key}: null is not allowed (expected {_type_name(inner)})")
    origin = typing.get_origin(inner)

    if origin is Union or origin is types.UnionType:
        for alt in typing.get_args(inner):
            try:
                return _convert(alt, value, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: {value!r} matches none of {_type_name(inner)}")
    if origin is Literal:
        allowed = typing.get_args(inner)
        if not any(type(a) is type(value) and a == value for a in allowed):
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(repr(a) for a in allowed)}")
        return value
    if dataclasses.is_dataclass(inner):
        if isinstance(value, inner):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping for {inner.__name__}, got {type(value).__name__}")
        return from_dict(inner, value, prefix=key)
    if origin in (list, Sequence) or inner is list:
        (item_tp,) = typing.get_args(inner) or (Any,)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_convert(item_tp, v, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is tuple:
        args = typing.get_args(inner)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{key}: expected {len(args)} values, got {len(value)}")
        return tuple(_convert(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if origin is dict or inner is dict:
        args = typing.get_args(inner) or (str, Any)
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return {_convert(args[0], k, f"{key}.{k}"): _convert(args[1], v, f"{key}.{k}") for k, v in value.items()}
    if inner is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if inner is int:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                try:
                    value = float(value)
                except ValueError:
                    raise ConfigError(f"{key}: expected an integer, got {value!r}") from None
        if isinstance(value, int):
            return value
        if isinstance(value, float) and math.isfinite(value) and value == int(value):
            return int(value)
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if inner is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if inner is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    if inner is Path:
        if isinstance(value, (str, Path)):
            return Path(value).expanduser()
        raise ConfigError(f"{key}: expected a path, got {value!r}")
    if isinstance(inner, type) and isinstance(value, inner):
        return value
    raise ConfigError(f"{key}: unsupported value {value!r} for type {_type_name(inner)}")


def from_dict(cls: type[T], data: Mapping[str, Any], prefix: str = "") -> T:
    """Build dataclass ``cls`` from a mapping, checking keys and types (see module doc)."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{_where(prefix)}: expected a mapping, got {type(data).__name__}")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for k in data:
        if k not in fields:
            dotted = f"{prefix}.{k}" if prefix else str(k)
            raise ConfigError(
                f"unknown key {dotted!r} (valid keys under {_where(prefix)!r}: {', '.join(fields)})"
            )
    kwargs = {}
    for name, f in fields.items():
        dotted = f"{prefix}.{name}" if prefix else name
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], dotted)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing required key {dotted!r}")
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        msg = str(exc)
        raise ConfigError(msg if not prefix or msg.startswith(prefix) else f"{prefix}.{msg}") from None


def to_dict(obj: Any) -> Any:
    """A dataclass tree as plain YAML-able values (``Path`` -> str, tuple -> list)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, Mapping):
        return {str(k): to_dict(v) for k, v in obj.items()}
    return obj


# --------------------------------------------------------------------------- overrides
def parse_override(text: str) -> tuple[list[str], Any]:
    """``"optim.lr=1e-4"`` -> ``(["optim", "lr"], "1e-4")`` with the value parsed as YAML.

    >>> parse_override("optim.milestones=[10, 20]")
    (['optim', 'milestones'], [10, 20])
    >>> parse_override("data.images=~/Pictures")
    (['data', 'images'], '~/Pictures')
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override {text!r} is not of the form key=value")
    parts = key.split(".")
    if any(not p for p in parts):
        raise ConfigError(f"override {text!r}: empty component in key {key!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({exc})") from None
    return parts, value


def _check_path(cls: type, parts: list[str]) -> None:
    """Raise ConfigError when the dotted key ``parts`` does not exist in ``cls``'s tree."""
    tp: Any = cls
    for i, part in enumerate(parts):
        dc = _dataclass_of(tp)
        here = ".".join(parts[:i])
        if dc is not None:
            hints = _hints(dc)
            names = [f.name for f in dataclasses.fields(dc) if f.init]
            if part not in names:
                raise ConfigError(
                    f"unknown key {'.'.join(parts[: i + 1])!r} (valid keys under {_where(here)!r}: {', '.join(names)})"
                )
            tp = hints[part]
            continue
        inner, _ = _unwrap_optional(tp)
        if typing.get_origin(inner) is dict or inner is dict or inner is Any:
            args = typing.get_args(inner)
            tp = args[1] if len(args) == 2 else Any
            continue
        raise ConfigError(f"unknown key {'.'.join(parts)!r}: {here!r} is a {_type_name(inner)}, not a section")


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str], cls: type) -> dict[str, Any]:
    """Return a copy of ``data`` with dotted ``key=value`` overrides applied (keys checked)."""
    import copy

    out: dict[str, Any] = copy.deepcopy(dict(data))
    for text in overrides:
        parts, value = parse_override(text)
        _check_path(cls, parts)
        node = out
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[parts[-1]] = value
    return out


# --------------------------------------------------------------------------- files
def load_config(path: str | Path, cls: type[T], overrides: Sequence[str] = ()) -> T:
    """Read YAML ``path``, apply ``overrides`` and build ``cls``.

    Raises:
        ConfigError: unreadable file, invalid YAML, unknown key, wrong type; the message
            names the file (or the override) and the key.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"{path}: config file does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({exc})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        data = apply_overrides(data, overrides, cls)
    except ConfigError as exc:
        raise ConfigError(f"--set: {exc}") from None
    try:
        return from_dict(cls, data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def dump_config(obj: Any, path: str | Path | None = None) -> str:
    """YAML text for a dataclass config; also written atomically to ``path`` if given."""
    text = yaml.safe_dump(to_dict(obj), sort_keys=False, default_flow_style=None, allow_unicode=True)
    if path is not None:
        from harmonykit.io import atomic_write_text

        atomic_write_text(path, text)
    return text
