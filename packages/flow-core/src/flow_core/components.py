"""Component records: what a plugin's ``flow_register_<kind>s`` hook returns.

A record names a component and points at its code lazily, as a ``"module:attr"`` string that is
imported only when the component is first used, so listing components imports nothing heavy.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from typing import Any

from flow_core.errors import PluginError

__all__ = ["KINDS", "Component", "check_name", "import_target"]

KINDS: tuple[str, ...] = (
    "flow",
    "objective",
    "sampler",
    "task",
    "norm",
    "optimizer",
    "logger",
)
"""The registry kinds, each with a hook ``flow_register_<kind>s``."""

_KEBAB = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_TASK = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*\.[a-z0-9]+(?:-[a-z0-9]+)*$")
_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def check_name(kind: str, name: str) -> None:
    """Raise :class:`PluginError` unless ``name`` is valid for ``kind``.

    Names are lowercase kebab-case (``ot-cfm``); task names carry their plugin's prefix
    (``images.digits``).
    """
    if kind == "task":
        if not _TASK.match(name):
            raise PluginError(
                f"task name {name!r} is invalid: use '<plugin>.<task>' in lowercase kebab-case,"
                " e.g. 'images.digits'"
            )
    elif not _KEBAB.match(name):
        raise PluginError(
            f"{kind} name {name!r} is invalid: use lowercase kebab-case, e.g. 'ot-cfm'"
        )


@dataclass(frozen=True)
class Component:
    """One registered component.

    Attributes:
        name: lowercase kebab-case; tasks are ``"<plugin>.<task>"``.
        target: ``"package.module:attribute"`` imported on first use.
        summary: one line for ``flow list``.
        docs: optional link or path to the component's documentation.
    """

    name: str
    target: str
    summary: str
    docs: str = ""

    def __post_init__(self) -> None:
        if not _TARGET.match(self.target):
            raise PluginError(
                f"component {self.name!r} has target {self.target!r}; expected"
                " 'package.module:attribute'"
            )

    def load(self) -> Any:
        """Import and return the target object."""
        return import_target(self.target)


def import_target(target: str) -> Any:
    """Import ``"module:attr.sub"`` and return the attribute."""
    module_name, _, attr_path = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr_path.split("."):
        obj = getattr(obj, part)
    return obj
