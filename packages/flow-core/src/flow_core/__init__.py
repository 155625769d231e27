"""flow-core: protocols, plugin system, CLI and shared utilities for flow methods."""

from flow_core.components import Component
from flow_core.errors import FlowError
from flow_core.hookspecs import hookimpl
from flow_core.plugins import FLOW_PLUGIN_API

__all__ = ["FLOW_PLUGIN_API", "Component", "FlowError", "hookimpl"]
__version__ = "0.1.0"
