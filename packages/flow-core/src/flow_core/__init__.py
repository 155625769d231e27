"""flow-core: protocols, plugin system, CLI and shared utilities for flow methods.

The plugin API: a plugin imports from flow-core only the names in this package's ``__all__``
and the names in the ``__all__`` of the modules listed in :data:`PUBLIC_MODULES`; everything
else is internal and may change without notice. Importing this package stays cheap (no torch),
so a plugin's ``plugin.py`` can import it freely.
"""

from flow_core.components import Component
from flow_core.errors import ConfigError, FlowError, UsageError
from flow_core.hookspecs import hookimpl
from flow_core.plugins import FLOW_PLUGIN_API

__all__ = [
    "FLOW_PLUGIN_API",
    "PUBLIC_MODULES",
    "Component",
    "ConfigError",
    "FlowError",
    "UsageError",
    "hookimpl",
]
__version__ = "0.1.0"

PUBLIC_MODULES: tuple[str, ...] = (
    "flow_core",
    "flow_core.config",
    "flow_core.datasets",
    "flow_core.errors",
    "flow_core.evaluation",
    "flow_core.gpu",
    "flow_core.loggers",
    "flow_core.metrics",
    "flow_core.models",
    "flow_core.norms",
    "flow_core.objectives",
    "flow_core.options",
    "flow_core.paths",
    "flow_core.protocols",
    "flow_core.recipes",
    "flow_core.registry",
    "flow_core.runner",
    "flow_core.samplers",
    "flow_core.scaling",
    "flow_core.testing",
    "flow_core.training",
)
"""The modules plugins may import from, each with an ``__all__`` naming what is public.

The table in docs/plugins/api.md lists the same modules; a test keeps the two in step and fails
when a first-party plugin imports anything else from flow-core.
"""
