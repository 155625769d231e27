"""Checking a run before it starts, and routing the user's options to its components.

:func:`plan_run` takes a resolved config (:class:`flow_core.config.Resolution`) and decides,
before any work, which component fills each *role* (a config field declared with
:func:`flow_core.options.component`), and that everything the user set explicitly will be
used:

* every chosen component is registered, and those that declare a ``model_kind`` agree on it;
* a field set explicitly is in use: its ``when`` condition holds, and a field declared as
  ``option(role, param)`` goes to a component that takes ``param``;
* a key that is no field of the config is an option for the components: ``role.param``
  (``sampler.rtol=1e-3``) for one role, or a bare ``param`` (``rtol=1e-3``) for every chosen
  component that takes it; a key that no chosen component takes is an error naming the
  components that would.

A constructor parameter named like a registry kind (``norm``, ``optimizer``) holds a
component name of that kind and is checked against the registry.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flow_core.components import KINDS
from flow_core.config import Resolution, check_value, parse_value, type_name, unknown_key
from flow_core.errors import ConfigError
from flow_core.options import (
    FieldInfo,
    ParamInfo,
    constructor_options,
    takes_any_keyword,
    walk_fields,
)
from flow_core.registry import Registry

__all__ = ["RunPlan", "config_value", "declared_components", "plan_run"]


@dataclass(frozen=True)
class RunPlan:
    """What :func:`plan_run` decided.

    Attributes:
        components: ``{role: (kind, name)}`` of every component the run uses.
        options: ``{role: {param: value}}`` that the user set for each role's component.
        explicit: dotted paths of the config fields the user set.
        model_kind: the kind of network the run trains (``velocity``, ...), if any
            component declares one.
    """

    components: dict[str, tuple[str, str]] = field(default_factory=dict)
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    explicit: frozenset[str] = frozenset()
    model_kind: str | None = None


def config_value(config: Any, path: str) -> Any:
    """The value of the field at dotted ``path``."""
    value = config
    for part in path.split("."):
        value = getattr(value, part)
    return value


def declared_components(config: Any) -> dict[str, str | None]:
    """``{role: name}`` of the config's component fields; ``None`` where a field is empty or
    its ``when`` condition does not hold (the role is not used)."""
    chosen: dict[str, str | None] = {}
    for info in walk_fields(type(config)):
        if info.kind is None:
            continue
        name = config_value(config, info.path)
        active = name is not None and (info.when is None or info.when.holds(config))
        chosen[info.path] = name if active else None
    return chosen


def plan_run(task: Any, resolution: Resolution, registry: Registry, where: str = "") -> RunPlan:
    """Check the run and route the options; raise :class:`ConfigError` on the first problem.

    ``task.components(config, registry)``, where a task defines it, gives the chosen name of
    each role (filling the roles whose field is ``None``, e.g. a network chosen by the
    objective's model kind); otherwise :func:`declared_components` does.
    """
    config = resolution.config
    fields = {info.path: info for info in walk_fields(type(config))}
    choose = getattr(task, "components", None)
    named = dict(choose(config, registry)) if callable(choose) else declared_components(config)
    components: dict[str, tuple[str, str]] = {}
    classes: dict[str, Any] = {}
    for role, name in named.items():
        info = fields.get(role)
        if info is None or info.kind is None:
            raise ConfigError(f"task components() names {role!r}, which is no component field")
        if name is None:
            continue
        components[role] = (info.kind, name)
        classes[role] = registry.load(info.kind, name)
    model_kind = _agreed_model_kind(components, classes)
    for path in sorted(resolution.explicit):
        _check_explicit(fields[path], config, components, classes, registry)
    options: dict[str, dict[str, Any]] = {}
    for key, value in resolution.extras.items():
        for role, param, typed in _route(key, value, fields, components, classes, registry, where):
            options.setdefault(role, {})[param] = typed
    return RunPlan(components, options, resolution.explicit, model_kind)


def _agreed_model_kind(
    components: Mapping[str, tuple[str, str]], classes: Mapping[str, Any]
) -> str | None:
    kinds = {
        role: getattr(cls, "model_kind", None)
        for role, cls in classes.items()
        if isinstance(getattr(cls, "model_kind", None), str)
    }
    if len(set(kinds.values())) > 1:
        described = ", ".join(
            f"{role}={components[role][1]!r} works on {kind} models" for role, kind in kinds.items()
        )
        raise ConfigError(f"these components do not fit together: {described}")
    return next(iter(kinds.values()), None)


def _who_takes(registry: Registry, kinds: set[str], param: str) -> str:
    names = [
        f"{entry.kind} {entry.name!r}"
        for kind in sorted(kinds)
        for entry in registry.entries(kind)
        if param in _params(entry.load())
    ]
    return ("; it is an option of " + ", ".join(names)) if names else ""


def _params(cls: Any) -> dict[str, ParamInfo]:
    try:
        return constructor_options(cls)
    except Exception:  # a component that cannot be inspected takes nothing we can route
        return {}


def _accepts(cls: Any, param: str) -> bool:
    return param in _params(cls) or takes_any_keyword(cls)


def _check_explicit(
    info: FieldInfo,
    config: Any,
    components: Mapping[str, tuple[str, str]],
    classes: Mapping[str, Any],
    registry: Registry,
) -> None:
    value = config_value(config, info.path)
    if info.kind is not None and isinstance(value, str):
        registry.get(info.kind, value)  # a misspelt name is reported as such, used or not
    if info.when is not None and not info.when.holds(config):
        raise ConfigError(
            f"{info.path}={value!r} is set but not used: it applies only when {info.when.text}"
        )
    if info.option_of is None:
        return
    role, param = info.option_of
    if role not in components:
        raise ConfigError(
            f"{info.path}={value!r} is set but not used: it is an option of the {role},"
            " which this run does not use"
        )
    kind, name = components[role]
    if not _accepts(classes[role], param):
        raise ConfigError(
            f"{info.path}={value!r} is set but {kind} {name!r} takes no {param!r}"
            + _who_takes(registry, {kind}, param)
        )
    _check_component_name(param, value, registry, info.path)


def _check_component_name(param: str, value: Any, registry: Registry, key: str) -> None:
    """A parameter named like a registry kind (``norm=power``) must name a registered one."""
    if param in KINDS and isinstance(value, str):
        registry.get(param, value)


def _resolve_role(name: str, components: Mapping[str, tuple[str, str]], fields: Any) -> str:
    if name in fields and fields[name].kind is not None:
        return str(name)
    matches = [p for p, info in fields.items() if info.kind and p.rpartition(".")[2] == name]
    return matches[0] if len(matches) == 1 else ""


def _route(
    key: str,
    value: Any,
    fields: Mapping[str, FieldInfo],
    components: Mapping[str, tuple[str, str]],
    classes: Mapping[str, Any],
    registry: Registry,
    where: str,
) -> list[tuple[str, str, Any]]:
    """``[(role, param, typed value)]`` for one key that is no field of the config."""
    role_name, _, param = key.rpartition(".")
    if role_name:
        role = _resolve_role(role_name, components, fields)
        if not role:
            roles = [p for p, info in fields.items() if info.kind]
            raise ConfigError(
                f"unknown key {key!r}{where}: {role_name!r} is no component of this task"
                f" (components: {', '.join(roles)})"
            )
        if role not in components:
            raise ConfigError(
                f"{key}={value!r} is set but not used: this run uses no {role}"
                + _when_text(fields[role])
            )
        kind, name = components[role]
        if not _accepts(classes[role], param):
            accepted = ", ".join(p for p in _params(classes[role]) if p not in _INTERNAL)
            raise ConfigError(
                f"{key}={value!r}: {kind} {name!r} takes no {param!r} (its options: {accepted})"
                + _who_takes(registry, {kind}, param)
            )
        targets = [role]
    else:
        targets = [role for role, cls in classes.items() if _accepts(cls, param)]
        if not targets and not any(p.startswith("train.") for p in fields) and _shared(key):
            raise ConfigError(
                f"{key}={value!r}{where}: this task trains nothing (it has no training"
                " section), so the training settings do not apply"
            )
        if not targets:
            chosen = ", ".join(f"{k} {n!r}" for k, n in components.values()) or "none"
            error = unknown_key(key, [p for p in fields if "." not in p], where)
            raise ConfigError(
                f"{error}; no component of this run takes {key!r} either (chosen: {chosen})"
                + _who_takes(registry, {kind for kind, _ in components.values()}, key)
            )
    routed = []
    for role in targets:
        info = _params(classes[role]).get(param)
        typed = _typed(key, value, info)
        _check_component_name(param, typed, registry, key)
        routed.append((role, param, typed))
    return routed


_INTERNAL = frozenset({"params", "time_grid", "perceptual"})


def _shared(key: str) -> bool:
    """Whether ``key`` names a field of the shared training section."""
    from flow_core.training import TrainSettings

    return key in {f.name for f in dataclasses.fields(TrainSettings)}


def _when_text(info: FieldInfo) -> str:
    return f" (it is used only when {info.when.text})" if info.when is not None else ""


def _typed(key: str, value: Any, info: ParamInfo | None) -> Any:
    """``value`` converted to the parameter's annotation (or, without one, its default's
    type); a string from ``--set`` is parsed, a TOML value checked."""
    annotation: Any = None if info is None else info.annotation
    if annotation in (None, inspect.Parameter.empty) or isinstance(annotation, str):
        default = None if info is None else info.default
        annotation = _guess(default)
    if annotation is None:
        return _literal(value) if isinstance(value, str) else value
    try:
        if isinstance(value, str):
            return parse_value(annotation, value)
        return check_value(annotation, value)
    except ValueError:
        raise ConfigError(f"{key}={value!r}: expected {type_name(annotation)}") from None


def _guess(default: Any) -> Any:
    if isinstance(default, bool | int | float | str):
        return type(default)
    return None


def _literal(raw: str) -> Any:
    for convert in (int, float):
        try:
            return convert(raw)
        except ValueError:
            continue
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    return raw
