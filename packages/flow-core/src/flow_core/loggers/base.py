"""What every experiment logger is: the :class:`Logger` protocol, and the helpers loggers share.

A logger is a class registered under the kind ``logger`` and constructed as ``cls(run_dir)``.
It may define a static method ``check_available()`` that raises :class:`UsageError` when a
library it needs is missing; :func:`flow_core.loggers.check_loggers` calls it before a run
starts, so a missing package is reported before any work is done.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from flow_core.errors import UsageError

__all__ = ["LOGGER_METHODS", "Logger", "flat_items", "require", "stage_key"]


@runtime_checkable
class Logger(Protocol):
    """Receives a run's metrics, figures and config (on rank 0 only)."""

    def log_metrics(self, step: int, metrics: Mapping[str, float], stage: str = "") -> None:
        """Record the metrics of one step; ``stage`` names a stage of a multi-stage task."""

    def log_figure(self, name: str, path: Path) -> None:
        """Record the saved PNG figure at ``path`` under ``name`` (its file stem)."""

    def log_config(self, config: Mapping[str, Any]) -> None:
        """Record the run's config record (what ``config.json`` holds)."""

    def close(self) -> None:
        """Flush and release everything; called once at the end of the run, also on failure."""


LOGGER_METHODS: tuple[str, ...] = tuple(
    sorted(name for name, value in vars(Logger).items() if callable(value) and name[0] != "_")
)
"""The methods every logger has: ``close``, ``log_config``, ``log_figure``, ``log_metrics``."""


def require(module: str, logger: str, requirement: str) -> Any:
    """Import ``module`` for ``logger``, or raise :class:`UsageError` naming the pip command
    that installs ``requirement`` (``"flow-core[mlflow]"``)."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise UsageError(
            f"logger {logger!r} needs the optional dependency {module!r}, which does not import"
            f" ({error}); install it with: pip install '{requirement}'"
        ) from None


def stage_key(key: str, stage: str) -> str:
    """The metric name with the stage as a prefix (``teacher/loss``), or unchanged."""
    return f"{stage}/{key}" if stage else key


def flat_items(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings flattened to dotted keys; the ``config`` section's keys stay bare."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            inner = "" if not prefix and key == "config" else f"{name}."
            flat.update(flat_items(value, inner))
        else:
            flat[name] = value
    return flat
