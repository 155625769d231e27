"""The component registry: every plugin's records, looked up by kind and name.

``get_registry()`` loads the plugins once per process. Lookups of unknown names raise
:class:`UnknownComponentError` with close matches, and, for names that a known first-party
package provides, the package to install.
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
import functools
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

from flow_core.components import KINDS, Component
from flow_core.errors import UnknownComponentError, UsageError
from flow_core.plugins import LoadedPlugin, PluginSet, load_plugins

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "FIRST_PARTY_DISTRIBUTIONS",
    "FIRST_PARTY_TABLE",
    "Entry",
    "FirstParty",
    "Registry",
    "active_registry",
    "get_registry",
    "load_first_party",
    "normalize_kind",
    "using_registry",
]

FIRST_PARTY_TABLE = "first_party.toml"
"""The data file, shipped in flow_core, naming each first-party package's task prefix and names."""


@dataclass(frozen=True)
class FirstParty:
    """Which first-party distribution provides which names, read from :data:`FIRST_PARTY_TABLE`.

    Attributes:
        components: ``{(kind, name): distribution}`` for names listed per kind.
        task_prefixes: ``{prefix: distribution}``; a task ``prefix.x`` comes from it.
    """

    components: dict[tuple[str, str], str]
    task_prefixes: dict[str, str]

    @property
    def distributions(self) -> frozenset[str]:
        return frozenset({*self.components.values(), *self.task_prefixes.values()})

    def provider(self, kind: str, name: str) -> str | None:
        """The distribution to install for ``(kind, name)``, or None if none is known."""
        found = self.components.get((kind, name))
        if found is None and kind == "task":
            found = self.task_prefixes.get(name.partition(".")[0])
        return found


def load_first_party(text: str | None = None) -> FirstParty:
    """Parse the first-party table (``text``, or the file shipped with flow-core)."""
    if text is None:
        text = resources.files("flow_core").joinpath(FIRST_PARTY_TABLE).read_text("utf-8")
    components: dict[tuple[str, str], str] = {}
    prefixes: dict[str, str] = {}
    for package in tomllib.loads(text)["package"]:
        distribution = package["distribution"]
        if "task_prefix" in package:
            prefixes[package["task_prefix"]] = distribution
        for kind, names in package.get("components", {}).items():
            components.update({(kind, name): distribution for name in names})
    return FirstParty(components, prefixes)


_FIRST_PARTY = load_first_party()
FIRST_PARTY_DISTRIBUTIONS = frozenset({"flow-core", *_FIRST_PARTY.distributions})
"""The distributions this repository ships (their docs live under docs/packages/)."""


def normalize_kind(kind: str) -> str:
    """Accept ``task`` or ``tasks``; raise :class:`UsageError` for anything else."""
    singular = kind[:-1] if kind.endswith("s") and kind[:-1] in KINDS else kind
    if singular not in KINDS:
        raise UsageError(f"unknown kind {kind!r}; expected one of: {', '.join(KINDS)}")
    return singular


@dataclass(frozen=True)
class Entry:
    """A component together with the kind and plugin that registered it."""

    kind: str
    component: Component
    plugin: LoadedPlugin

    @property
    def name(self) -> str:
        return self.component.name

    def load(self) -> Any:
        return self.component.load()


class Registry:
    """Lookup of components by kind and name over a loaded :class:`PluginSet`."""

    def __init__(self, plugin_set: PluginSet) -> None:
        self.plugin_set = plugin_set
        self._entries: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}
        for kind, component, plugin in plugin_set.components():
            self._entries[kind][component.name] = Entry(kind, component, plugin)

    @property
    def plugins(self) -> list[LoadedPlugin]:
        return self.plugin_set.plugins

    def entries(self, kind: str | None = None) -> list[Entry]:
        """All entries, or those of one kind, sorted by kind then name."""
        kinds = KINDS if kind is None else (normalize_kind(kind),)
        return [self._entries[k][name] for k in kinds for name in sorted(self._entries[k])]

    def names(self, kind: str) -> list[str]:
        return sorted(self._entries[normalize_kind(kind)])

    def get(self, kind: str, name: str) -> Entry:
        """The entry for ``(kind, name)``; raises :class:`UnknownComponentError` if absent."""
        kind = normalize_kind(kind)
        try:
            return self._entries[kind][name]
        except KeyError:
            raise UnknownComponentError(self._unknown_message(kind, name)) from None

    def load(self, kind: str, name: str) -> Any:
        """Import and return the object behind ``(kind, name)``."""
        return self.get(kind, name).load()

    def find(self, name: str) -> list[Entry]:
        """Entries of any kind called ``name``; raises if there are none."""
        found = [self._entries[k][name] for k in KINDS if name in self._entries[k]]
        if not found:
            everything = [n for k in KINDS for n in self._entries[k]]
            raise UnknownComponentError(
                f"no component is called {name!r}" + _suggest(name, everything)
            )
        return found

    def _unknown_message(self, kind: str, name: str) -> str:
        message = f"unknown {kind} {name!r}" + _suggest(name, list(self._entries[kind]))
        provider = _FIRST_PARTY.provider(kind, name)
        if provider is not None:
            message += f"; {kind} {name!r} is provided by {provider}: pip install {provider}"
        return message


def _suggest(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.5)
    if close:
        return "; did you mean " + " or ".join(repr(c) for c in close) + "?"
    if candidates:
        return "; available: " + ", ".join(sorted(candidates))
    return ""


@functools.lru_cache(maxsize=1)
def get_registry() -> Registry:
    """The process-wide registry (plugins are loaded on the first call)."""
    return Registry(load_plugins())


_ACTIVE: contextvars.ContextVar[Registry | None] = contextvars.ContextVar(
    "flow_active_registry", default=None
)


def active_registry() -> Registry:
    """The registry of the run in progress (see :func:`using_registry`), else the
    process-wide one: what a network uses to build a ``norm=`` by name."""
    return _ACTIVE.get() or get_registry()


@contextlib.contextmanager
def using_registry(registry: Registry) -> Iterator[Registry]:
    """Make ``registry`` the :func:`active_registry` inside the ``with`` block."""
    token = _ACTIVE.set(registry)
    try:
        yield registry
    finally:
        _ACTIVE.reset(token)
