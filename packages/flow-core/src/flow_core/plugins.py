"""Plugin discovery and loading.

Plugins are found through the entry-point group ``flow.plugins``; each entry point names a
module holding hook implementations (see :mod:`flow_core.hookspecs`). Loading follows these
rules:

* each plugin is imported in isolation: a plugin that fails to import, declares an incompatible
  ``FLOW_PLUGIN_API``, or raises inside a hook is skipped with one warning naming the plugin,
  its distribution and the cause; ``FLOW_STRICT_PLUGINS=1`` turns that into an error;
* ``FLOW_DISABLE_PLUGINS=a,b`` blocks the named plugins; ``FLOW_LOAD_PLUGINS=a,b`` loads only
  those (the built-in ``core`` plugin is always loaded);
* two plugins registering one ``(kind, name)`` is a :class:`PluginConflictError` naming both
  distributions.
"""

from __future__ import annotations

import importlib.metadata
import os
import types
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points

import pluggy

from flow_core import hookspecs
from flow_core.components import KINDS, Component, check_name
from flow_core.errors import PluginConflictError, PluginError

__all__ = [
    "ENTRY_POINT_GROUP",
    "FLOW_PLUGIN_API",
    "LoadedPlugin",
    "PluginSet",
    "PluginWarning",
    "load_plugins",
]

FLOW_PLUGIN_API = 1
"""Version of the plugin API; a plugin module declares the version it was written for."""

ENTRY_POINT_GROUP = "flow.plugins"
BUILTIN_NAME = "core"


class PluginWarning(UserWarning):
    """A plugin was skipped; the message names it, its distribution and the cause."""


@dataclass
class LoadedPlugin:
    """One plugin as seen by ``flow plugins``."""

    name: str
    distribution: str
    version: str
    status: str  # "loaded", "failed", "disabled" or "conflict"
    error: str = ""
    components: dict[str, list[Component]] = field(default_factory=dict)


@dataclass
class PluginSet:
    """The outcome of loading: the pluggy manager and every plugin's status and components."""

    manager: pluggy.PluginManager
    plugins: list[LoadedPlugin]

    def components(self) -> Iterable[tuple[str, Component, LoadedPlugin]]:
        """Yield ``(kind, component, plugin)`` for every loaded plugin's components."""
        for plugin in self.plugins:
            for kind, records in plugin.components.items():
                for record in records:
                    yield kind, record, plugin


def _env_list(name: str) -> set[str] | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def _strict() -> bool:
    return os.environ.get("FLOW_STRICT_PLUGINS", "").strip().lower() in {"1", "true", "yes"}


def _distribution(entry_point: EntryPoint) -> tuple[str, str]:
    dist = entry_point.dist
    if dist is None:
        return "unknown", "?"
    return dist.metadata["Name"], dist.version


def _check_api(module: types.ModuleType) -> None:
    api = getattr(module, "FLOW_PLUGIN_API", None)
    if api is None:
        raise PluginError(
            f"module {module.__name__} does not declare FLOW_PLUGIN_API"
            f" (this flow-core expects FLOW_PLUGIN_API = {FLOW_PLUGIN_API})"
        )
    if api != FLOW_PLUGIN_API:
        raise PluginError(
            f"written for plugin API {api!r}, but this flow-core provides API {FLOW_PLUGIN_API}"
        )


def _collect(manager: pluggy.PluginManager, plugin_name: str) -> dict[str, list[Component]]:
    """Call one plugin's own hook implementations and validate their records."""
    found: dict[str, list[Component]] = {}
    for kind in KINDS:
        hook_name = f"flow_register_{kind}s"
        for impl in getattr(manager.hook, hook_name).get_hookimpls():
            if impl.plugin_name != plugin_name:
                continue
            records = impl.function()
            if not isinstance(records, list | tuple) or not all(
                isinstance(r, Component) for r in records
            ):
                raise PluginError(f"hook {hook_name} must return a list of Component records")
            for record in records:
                check_name(kind, record.name)
                if kind == "task" and not record.name.startswith(f"{plugin_name}."):
                    raise PluginError(
                        f"plugin {plugin_name!r} registers task {record.name!r} outside its"
                        f" prefix: its task names must start with '{plugin_name}.'"
                    )
            found[kind] = list(records)
    return found


def _failure_message(plugin: LoadedPlugin) -> str:
    return (
        f"skipping plugin {plugin.name!r} ({plugin.distribution} {plugin.version}): {plugin.error}"
    )


def _report_failure(plugin: LoadedPlugin, error: BaseException) -> None:
    """Mark ``plugin`` failed; warn now, unless strict mode will raise for all at the end."""
    plugin.status = "failed"
    plugin.error = f"{type(error).__name__}: {error}"
    if not _strict():
        warnings.warn(_failure_message(plugin), PluginWarning, stacklevel=3)


def _raise_if_strict(plugins: list[LoadedPlugin]) -> None:
    """Under ``FLOW_STRICT_PLUGINS=1``, one error listing every plugin that failed."""
    failed = [p for p in plugins if p.status == "failed"]
    if not _strict() or not failed:
        return
    listed = "; ".join(_failure_message(p) for p in failed)
    raise PluginError(f"{len(failed)} plugin(s) failed to load: {listed} [FLOW_STRICT_PLUGINS=1]")


def _register(
    manager: pluggy.PluginManager,
    module: types.ModuleType,
    plugin: LoadedPlugin,
) -> None:
    _check_api(module)
    manager.register(module, name=plugin.name)
    plugin.components = _collect(manager, plugin.name)
    plugin.status = "loaded"


def load_plugins(
    entry_points_: Iterable[EntryPoint] | None = None,
    *,
    extra_modules: Iterable[types.ModuleType] = (),
    report_conflicts: bool = False,
) -> PluginSet:
    """Discover and load every plugin, honouring the ``FLOW_*_PLUGINS`` switches.

    Args:
        entry_points_: the entry points to consider; by default those in ``flow.plugins``.
        extra_modules: plugin modules registered directly (used by tests and
            :func:`flow_core.testing.isolated_registry`).
        report_conflicts: instead of raising on a clash, mark the clashing plugins with
            status ``conflict`` and an error naming the other one (for ``flow plugins``).

    Raises:
        PluginConflictError: two plugins registered the same ``(kind, name)``.
        PluginError: under ``FLOW_STRICT_PLUGINS=1``, one or more plugins failed to load
            (the message lists every one).
    """
    from flow_core import plugin as builtin

    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    plugins: list[LoadedPlugin] = []

    core = LoadedPlugin(BUILTIN_NAME, "flow-core", _core_version(), "loading")
    _register(manager, builtin, core)
    plugins.append(core)

    allow = _env_list("FLOW_LOAD_PLUGINS")
    block = _env_list("FLOW_DISABLE_PLUGINS") or set()
    if entry_points_ is None:
        entry_points_ = entry_points(group=ENTRY_POINT_GROUP)
    for entry_point in sorted(entry_points_, key=lambda ep: ep.name):
        dist_name, version = _distribution(entry_point)
        plugin = LoadedPlugin(entry_point.name, dist_name, version, "loading")
        plugins.append(plugin)
        if entry_point.name == BUILTIN_NAME:
            _report_failure(plugin, PluginError("the name 'core' is reserved for flow-core"))
            continue
        if entry_point.name in block or (allow is not None and entry_point.name not in allow):
            plugin.status = "disabled"
            manager.set_blocked(entry_point.name)
            continue
        try:
            module = entry_point.load()
            if not isinstance(module, types.ModuleType):
                raise PluginError(
                    f"entry point {entry_point.value!r} must name a module, not an attribute"
                )
            _register(manager, module, plugin)
        except Exception as error:
            if manager.has_plugin(plugin.name):
                manager.unregister(name=plugin.name)
            _report_failure(plugin, error)

    for module in extra_modules:
        top = module.__name__.split(".", 1)[0]
        name = top.removeprefix("flow_").replace("_", "-")
        plugin = LoadedPlugin(name, top.replace("_", "-"), "-", "")
        plugins.append(plugin)
        _register(manager, module, plugin)

    manager.check_pending()
    _raise_if_strict(plugins)
    clashes = _find_conflicts(plugins)
    if clashes and not report_conflicts:
        raise PluginConflictError(
            "; ".join(clashes) + ". Uninstall one, or block one with FLOW_DISABLE_PLUGINS=<plugin>."
        )
    return PluginSet(manager, plugins)


def _find_conflicts(plugins: list[LoadedPlugin]) -> list[str]:
    """Describe every ``(kind, name)`` two plugins both register; mark both ``conflict``."""
    owners: dict[tuple[str, str], LoadedPlugin] = {}
    clashes: list[str] = []
    for plugin in plugins:
        for kind, records in plugin.components.items():
            for record in records:
                first = owners.setdefault((kind, record.name), plugin)
                if first is plugin:
                    continue
                clashes.append(
                    f"{kind} {record.name!r} is registered by both plugin"
                    f" {first.name!r} ({first.distribution}) and plugin {plugin.name!r}"
                    f" ({plugin.distribution})"
                )
                for one, other in ((first, plugin), (plugin, first)):
                    one.status = "conflict"
                    note = f"{kind} {record.name!r} also registered by {other.distribution}"
                    one.error = f"{one.error}; {note}" if one.error else note
    return clashes


def _core_version() -> str:
    try:
        return importlib.metadata.version("flow-core")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"
