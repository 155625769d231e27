"""Declaring what a task's config fields are for, and what a component's constructor takes.

A task's config is a frozen dataclass. Most fields are the task's own; three helpers mark the
others, so that the runner can check a run *before* it starts (see
:mod:`flow_core.routing`):

* :func:`component` — the field holds the name of a registered component of a kind
  (``objective: str = component("objective", "cfm")``); the field's dotted path is the
  component's *role* (``objective``, ``reflow_objective``, ``train.optimizer``);
* :func:`option` — the field is forwarded to one role's constructor as a keyword
  (``sample_steps: int = option("sampler", "steps", 16)``); set explicitly for a component
  that does not take it, it is an error, never silently dropped;
* :func:`section` — the field is a nested config dataclass (the shared training section).

Any of them, and plain fields through :func:`setting`, may say when they are used
(``when=used_if("reflow_rounds > 0", lambda c: c.reflow_rounds > 0)``): a value set explicitly
while its condition is false is an error that quotes the condition.

:func:`constructor_options` reads what a component's constructor accepts (name, type, default
and the line of its docstring's ``Args:`` section), following ``**kwargs`` into base classes,
for option routing and for ``flow info``.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Condition",
    "FieldInfo",
    "ParamInfo",
    "component",
    "construct",
    "constructor_options",
    "option",
    "section",
    "setting",
    "takes_any_keyword",
    "used_if",
    "walk_fields",
]

_META = "flow"


@dataclass(frozen=True)
class Condition:
    """When a field is used: ``predicate(config)`` on the whole (top-level) config."""

    text: str
    predicate: Callable[[Any], bool]

    def holds(self, config: Any) -> bool:
        return bool(self.predicate(config))


def used_if(text: str, predicate: Callable[[Any], bool]) -> Condition:
    """A :class:`Condition`; ``text`` is quoted in messages (``"reflow_rounds > 0"``)."""
    return Condition(text, predicate)


@dataclass(frozen=True)
class _Role:
    kind: str | None = None
    option_of: tuple[str, str] | None = None
    when: Condition | None = None


def component(kind: str, default: str | None, *, when: Condition | None = None) -> Any:
    """A field naming a registered component of ``kind`` (``None``: the task chooses)."""
    return dataclasses.field(default=default, metadata={_META: _Role(kind=kind, when=when)})


def option(role: str, param: str, default: Any, *, when: Condition | None = None) -> Any:
    """A field passed to the component in ``role`` (a sibling field) as keyword ``param``."""
    return dataclasses.field(
        default=default, metadata={_META: _Role(option_of=(role, param), when=when)}
    )


def setting(default: Any, *, when: Condition) -> Any:
    """A plain task field that is used only when ``when`` holds."""
    return dataclasses.field(default=default, metadata={_META: _Role(when=when)})


def section(factory: Callable[[], Any]) -> Any:
    """A nested config dataclass (built by ``factory``), e.g. the training section."""
    return dataclasses.field(default_factory=factory)


@dataclass(frozen=True)
class FieldInfo:
    """One leaf field of a (possibly nested) config, by its dotted path."""

    path: str
    annotation: Any
    default: Any
    kind: str | None = None
    option_of: tuple[str, str] | None = None
    when: Condition | None = None

    @property
    def name(self) -> str:
        return self.path.rpartition(".")[2]


def _is_section(annotation: Any) -> bool:
    return isinstance(annotation, type) and dataclasses.is_dataclass(annotation)


def walk_fields(
    config_cls: type[Any], prefix: str = "", defaults: Any = None
) -> Iterator[FieldInfo]:
    """The leaf fields of ``config_cls`` in declaration order, sections flattened.

    An option's role is given relative to its section and returned as a dotted path
    (``option("optimizer", "lr", ...)`` inside the section ``train`` → role
    ``train.optimizer``).
    """
    if not dataclasses.is_dataclass(config_cls):
        raise TypeError(f"{config_cls!r} is not a dataclass")
    hints = typing.get_type_hints(config_cls)
    for f in dataclasses.fields(config_cls):
        annotation = hints[f.name]
        path = prefix + f.name
        if defaults is not None:
            default = getattr(defaults, f.name)
        elif f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = dataclasses.MISSING
        if _is_section(annotation):
            yield from walk_fields(annotation, path + ".", default)
            continue
        role: _Role = f.metadata.get(_META, _Role())
        option_of = None
        if role.option_of is not None:
            option_of = (prefix + role.option_of[0], role.option_of[1])
        yield FieldInfo(path, annotation, default, role.kind, option_of, role.when)


@dataclass(frozen=True)
class ParamInfo:
    """One keyword a constructor accepts."""

    name: str
    annotation: Any
    default: Any
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty


_ARG_LINE = re.compile(r"^(\s+)\*{0,2}(\w+)(?:\s*\([^)]*\))?:\s*(.*)$")


def _arg_docs(obj: Any) -> dict[str, str]:
    """``{name: first sentence}`` from the ``Args:`` section of ``obj``'s docstring."""
    found: dict[str, str] = {}
    indent, current, in_args = None, "", False
    for line in (inspect.getdoc(obj) or "").splitlines():
        if line.strip() in ("Args:", "Arguments:"):
            in_args, indent = True, None
            continue
        if not in_args or not line.strip():
            continue
        if not line.startswith(" "):
            in_args = False
            continue
        match = _ARG_LINE.match(line)
        if match and (indent is None or len(match.group(1)) == indent):
            indent, current = len(match.group(1)), match.group(2)
            found[current] = match.group(3).strip()
        elif current:
            found[current] += " " + line.strip()
    return {name: _first_sentence(text) for name, text in found.items()}


def _first_sentence(text: str) -> str:
    end = text.find(". ")
    return text[: end + 1] if end >= 0 else text


def _own_parameters(cls: type[Any]) -> tuple[list[inspect.Parameter], bool]:
    init = cls.__init__ if isinstance(cls, type) else cls
    try:
        signature = inspect.signature(init)
    except (TypeError, ValueError):
        return [], True
    params = [p for p in signature.parameters.values() if p.name != "self"]
    var_keyword = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    keywords = [
        p
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    return keywords, var_keyword


def _hints(obj: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(obj)
    except Exception:  # annotations naming TYPE_CHECKING-only imports
        return {}


def constructor_options(cls: Any) -> dict[str, ParamInfo]:
    """The keywords ``cls(...)`` accepts, with type, default and doc line.

    A constructor that takes ``**kwargs`` and passes them on is followed into its base
    classes, so a subclass need not restate its parent's signature. A plain function
    (a component registered as a factory) is read the same way.
    """
    found: dict[str, ParamInfo] = {}
    classes = list(inspect.getmro(cls)) if isinstance(cls, type) else [cls]
    for owner in classes:
        if owner is object:
            break
        if isinstance(owner, type) and "__init__" not in vars(owner):
            continue
        params, var_keyword = _own_parameters(owner)
        target = vars(owner)["__init__"] if isinstance(owner, type) else owner
        hints = _hints(target)
        docs = {**_arg_docs(owner), **_arg_docs(target)}
        for p in params:
            if p.name not in found:
                annotation = hints.get(p.name, p.annotation)
                found[p.name] = ParamInfo(p.name, annotation, p.default, docs.get(p.name, ""))
        if not var_keyword:
            break
    return found


def takes_any_keyword(cls: Any) -> bool:
    """Whether the chain of constructors ends in a bare ``**kwargs`` (accepts anything)."""
    classes = list(inspect.getmro(cls)) if isinstance(cls, type) else [cls]
    for owner in classes:
        if owner is object:
            return False
        if isinstance(owner, type) and "__init__" not in vars(owner):
            continue
        _, var_keyword = _own_parameters(owner)
        if not var_keyword:
            return False
    return True


def construct(cls: Any, defaults: Mapping[str, Any], chosen: Mapping[str, Any]) -> Any:
    """``cls(**kwargs)``: ``defaults`` it does not accept are left out; ``chosen`` (options
    the user set, already checked against ``cls``) are passed as they are and win."""
    accepted = constructor_options(cls)
    open_ended = takes_any_keyword(cls)
    kwargs = {k: v for k, v in defaults.items() if open_ended or k in accepted}
    kwargs.update(chosen)
    return cls(**kwargs)
