"""Exceptions raised by flow-core and its plugins.

Every error a user can cause derives from :class:`FlowError`. The command line turns a
:class:`UsageError` into exit status 2 and any other :class:`FlowError` into exit status 1,
printing the message on one line (the traceback only with ``--debug``).
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DeviceError",
    "FlowError",
    "PluginConflictError",
    "PluginError",
    "TrainingDivergedError",
    "UnknownComponentError",
    "UsageError",
]


class FlowError(Exception):
    """Base class: something was wrong, where, and what is accepted."""


class UsageError(FlowError):
    """Bad usage or configuration; the command line exits with status 2."""


class ConfigError(UsageError):
    """A configuration key or value is invalid (names the key and the valid ones)."""


class UnknownComponentError(UsageError):
    """A component name is not registered (suggests close matches)."""


class DeviceError(UsageError):
    """A requested device is unavailable on this machine."""


class PluginError(FlowError):
    """A plugin could not be loaded or registered."""


class PluginConflictError(PluginError):
    """Two plugins registered the same component name."""


class CheckpointError(FlowError):
    """A checkpoint is missing, corrupt, or does not match the model or config."""


class TrainingDivergedError(FlowError):
    """The loss became non-finite; training stopped and the last good checkpoint was kept."""
