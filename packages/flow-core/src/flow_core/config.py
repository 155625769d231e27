"""Task configuration: frozen dataclasses, overridden from TOML files and ``--set key=value``.

Precedence: the dataclass defaults, then the TOML file, then each ``--set`` in order. Values
are checked against the field's annotation (``int``, ``float``, ``bool``, ``str``,
``Literal[...]``, ``X | None`` and ``tuple[X, ...]``); a bad key or value raises
:class:`ConfigError` naming the key and what is accepted.
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, Union

from flow_core.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["config_fields", "config_to_dict", "load_toml", "parse_set", "resolve_config"]


def config_fields(config_cls: type[Any]) -> dict[str, tuple[Any, Any]]:
    """``{name: (annotation, default)}`` of a config dataclass, in declaration order."""
    if not dataclasses.is_dataclass(config_cls):
        raise TypeError(f"{config_cls!r} is not a dataclass")
    hints = typing.get_type_hints(config_cls)
    out: dict[str, tuple[Any, Any]] = {}
    for f in dataclasses.fields(config_cls):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = dataclasses.MISSING
        out[f.name] = (hints[f.name], default)
    return out


def config_to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (tuples become lists)."""
    return {
        k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()
    }


def type_name(annotation: Any) -> str:
    """A short human-readable name for a field annotation."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(annotation))
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(a) for a in typing.get_args(annotation))
    if origin is tuple:
        return f"tuple[{type_name(typing.get_args(annotation)[0])}, ...]"
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation))


def _from_string(annotation: Any, raw: str) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = typing.get_args(annotation)
        if type(None) in args and raw.strip().lower() in {"none", "null", ""}:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _from_string(arg, raw)
            except ValueError:
                continue
        raise ValueError(raw)
    if origin is Literal:
        for choice in typing.get_args(annotation):
            if str(choice) == raw:
                return choice
        raise ValueError(raw)
    if origin is tuple:
        inner = typing.get_args(annotation)[0]
        parts = [p.strip() for p in raw.strip("()[] ").split(",") if p.strip()]
        return tuple(_from_string(inner, p) for p in parts)
    if annotation is bool:
        lowered = raw.strip().lower()
        if lowered in {"true", "1", "yes", "on"}:
            return True
        if lowered in {"false", "0", "no", "off"}:
            return False
        raise ValueError(raw)
    if annotation is int:
        return int(raw)
    if annotation is float:
        return float(raw)
    if annotation is str:
        return raw
    raise ValueError(f"unsupported annotation {annotation!r}")


def _check_value(annotation: Any, value: Any) -> Any:
    """Validate (and lightly convert) a value that came already typed, e.g. from TOML."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        for arg in typing.get_args(annotation):
            try:
                return _check_value(arg, value)
            except ValueError:
                continue
        raise ValueError(value)
    if origin is Literal:
        if value in typing.get_args(annotation):
            return value
        raise ValueError(value)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ValueError(value)
        inner = typing.get_args(annotation)[0]
        return tuple(_check_value(inner, v) for v in value)
    if annotation is type(None):
        if value is None:
            return None
        raise ValueError(value)
    if annotation is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if annotation is int and isinstance(value, bool):
        raise ValueError(value)
    if isinstance(annotation, type) and isinstance(value, annotation):
        return value
    raise ValueError(value)


def _unknown_key(key: str, valid: Iterable[str], where: str) -> ConfigError:
    valid = list(valid)
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(f"unknown key {key!r}{where}{hint}; valid keys: {', '.join(valid)}")


def parse_set(item: str) -> tuple[str, str]:
    """Split ``key=value`` from ``--set``."""
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects key=value, got {item!r}")
    return key.strip(), value.strip()


def load_toml(path: Path) -> dict[str, Any]:
    """Read a TOML config file; raise :class:`ConfigError` if it is unreadable."""
    try:
        with open(path, "rb") as handle:
            values: dict[str, Any] = tomllib.load(handle)
            return values
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"config file {str(path)!r} is not readable TOML: {error}") from None


def resolve_config(
    config_cls: type[Any],
    *,
    file_values: Mapping[str, Any] | None = None,
    overrides: Iterable[tuple[str, str]] = (),
    where: str = "",
) -> Any:
    """Build a config: defaults, then ``file_values`` (typed), then string ``overrides``.

    Args:
        config_cls: the task's frozen config dataclass.
        file_values: values read from a TOML file.
        overrides: ``(key, raw string)`` pairs from ``--set``, applied in order.
        where: context for messages, e.g. ``" for task 'core.toy2d'"``.
    """
    fields = config_fields(config_cls)
    values: dict[str, Any] = {}
    for key, value in (file_values or {}).items():
        if key not in fields:
            raise _unknown_key(key, fields, where + " in the config file")
        annotation = fields[key][0]
        try:
            values[key] = _check_value(annotation, value)
        except ValueError:
            raise ConfigError(
                f"config file value {value!r} for {key!r}{where} has the wrong type;"
                f" expected {type_name(annotation)}"
            ) from None
    for key, raw in overrides:
        if key not in fields:
            raise _unknown_key(key, fields, where)
        annotation = fields[key][0]
        try:
            values[key] = _from_string(annotation, raw)
        except ValueError:
            raise ConfigError(
                f"--set {key}={raw!r}{where}: expected {type_name(annotation)}"
            ) from None
    try:
        return config_cls(**values)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"invalid config{where}: {error}") from None
