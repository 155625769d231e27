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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union

from flow_core.errors import ConfigError
from flow_core.options import FieldInfo, walk_fields

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "Resolution",
    "check_value",
    "config_fields",
    "config_to_dict",
    "field_aliases",
    "flatten",
    "load_toml",
    "parse_set",
    "parse_value",
    "resolve_config",
    "resolve_settings",
    "unknown_key",
]


def config_fields(config_cls: type[Any]) -> dict[str, tuple[Any, Any]]:
    """``{dotted path: (annotation, default)}`` of a config dataclass's leaf fields, in
    declaration order (nested sections such as ``train`` flattened to ``train.steps``)."""
    return {f.path: (f.annotation, f.default) for f in walk_fields(config_cls)}


def field_aliases(config_cls: type[Any]) -> dict[str, str]:
    """Short names of section fields: ``steps`` for ``train.steps`` where no top-level field
    and no other section field is called ``steps``."""
    paths = [f.path for f in walk_fields(config_cls)]
    top = {p for p in paths if "." not in p}
    short: dict[str, list[str]] = {}
    for path in paths:
        if "." in path:
            short.setdefault(path.rpartition(".")[2], []).append(path)
    return {name: found[0] for name, found in short.items() if len(found) == 1 and name not in top}


def config_to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (sections nested, tuples become lists)."""

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        return value

    return {k: plain(v) for k, v in dataclasses.asdict(config).items()}


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 1}}`` → ``{"train.lr": 1}`` (tables of a TOML file or config.json)."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


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


def parse_value(annotation: Any, raw: str) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = typing.get_args(annotation)
        if type(None) in args and raw.strip().lower() in {"none", "null", ""}:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return parse_value(arg, raw)
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
        return tuple(parse_value(inner, p) for p in parts)
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


def check_value(annotation: Any, value: Any) -> Any:
    """Validate (and lightly convert) a value that came already typed, e.g. from TOML."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        for arg in typing.get_args(annotation):
            try:
                return check_value(arg, value)
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
        return tuple(check_value(inner, v) for v in value)
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


def unknown_key(key: str, valid: Iterable[str], where: str) -> ConfigError:
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


@dataclass(frozen=True)
class Resolution:
    """A resolved config and what the user said to get it.

    Attributes:
        config: the config dataclass instance.
        explicit: dotted paths of the fields set by the file or by ``--set`` (defaults never
            appear here).
        extras: keys that are no field of the config, with their values (a ``str`` from
            ``--set`` or a typed value from the file): options for the run's components,
            checked and routed by :mod:`flow_core.routing`.
    """

    config: Any
    explicit: frozenset[str]
    extras: dict[str, Any]


def _canonical(key: str, fields: Mapping[str, FieldInfo], aliases: Mapping[str, str]) -> str | None:
    """The field path ``key`` names: itself, a section field's short name, or ``role.param``
    for a field declared as ``option(role, param)`` (``sampler.steps`` → ``sample_steps``)."""
    if key in fields:
        return key
    if key in aliases:
        return aliases[key]
    role, _, param = key.rpartition(".")
    if role:
        role = aliases.get(role, role)
        for info in fields.values():
            if info.option_of == (role, param):
                return info.path
    return None


def _build(
    config_cls: type[Any], values: Mapping[str, Any], prefix: str = "", base: Any = None
) -> Any:
    """``config_cls`` with ``values`` (by dotted path) over its defaults, or over ``base``."""
    kwargs: dict[str, Any] = {}
    hints = typing.get_type_hints(config_cls)
    for f in dataclasses.fields(config_cls):
        path = prefix + f.name
        annotation = hints[f.name]
        if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
            if any(key.startswith(path + ".") for key in values):
                if base is not None:
                    default = getattr(base, f.name)
                elif f.default_factory is not dataclasses.MISSING:
                    default = f.default_factory()
                else:
                    default = f.default
                kwargs[f.name] = _build(annotation, values, path + ".", default)
        elif path in values:
            kwargs[f.name] = values[path]
    if base is not None:
        return dataclasses.replace(base, **kwargs)
    return config_cls(**kwargs)


def resolve_settings(
    config_cls: type[Any],
    *,
    file_values: Mapping[str, Any] | None = None,
    overrides: Iterable[tuple[str, str]] = (),
    where: str = "",
) -> Resolution:
    """Build a config: defaults, then ``file_values`` (typed), then string ``overrides``.

    Keys may name a field (``lr``), a section's field by its dotted path (``train.lr``) or,
    where unambiguous, its short name (``lr``); a field declared as ``option(role, param)`` also
    by ``role.param``. TOML tables are read as dotted prefixes. Keys that name no field are
    returned in :attr:`Resolution.extras` for the router.

    Args:
        config_cls: the task's frozen config dataclass.
        file_values: values read from a TOML file.
        overrides: ``(key, raw string)`` pairs from ``--set``, applied in order.
        where: context for messages, e.g. ``" for task 'core.toy2d'"``.
    """
    fields = {f.path: f for f in walk_fields(config_cls)}
    aliases = field_aliases(config_cls)
    values: dict[str, Any] = {}
    extras: dict[str, Any] = {}
    for key, value in flatten(file_values or {}).items():
        path = _canonical(key, fields, aliases)
        if path is None:
            extras[key] = value
            continue
        annotation = fields[path].annotation
        try:
            values[path] = check_value(annotation, value)
        except ValueError:
            raise ConfigError(
                f"config file value {value!r} for {key!r}{where} has the wrong type;"
                f" expected {type_name(annotation)}"
            ) from None
    for key, raw in overrides:
        path = _canonical(key, fields, aliases)
        if path is None:
            extras[key] = raw
            continue
        annotation = fields[path].annotation
        try:
            values[path] = parse_value(annotation, raw)
        except ValueError:
            raise ConfigError(
                f"--set {key}={raw!r}{where}: expected {type_name(annotation)}"
            ) from None
    try:
        config = _build(config_cls, values)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"invalid config{where}: {error}") from None
    return Resolution(config, frozenset(values), extras)


def resolve_config(
    config_cls: type[Any],
    *,
    file_values: Mapping[str, Any] | None = None,
    overrides: Iterable[tuple[str, str]] = (),
    where: str = "",
) -> Any:
    """:func:`resolve_settings` for a config whose every key must be a field."""
    resolution = resolve_settings(
        config_cls, file_values=file_values, overrides=overrides, where=where
    )
    if resolution.extras:
        key = next(iter(resolution.extras))
        in_file = file_values is not None and key in flatten(file_values)
        raise unknown_key(
            key, config_fields(config_cls), where + (" in the config file" if in_file else "")
        )
    return resolution.config
