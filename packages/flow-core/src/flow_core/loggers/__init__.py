"""Experiment loggers: where a run's metrics, figures and config go besides the run directory.

A logger is a registry component of kind ``logger`` (hook ``flow_register_loggers``) that
satisfies :class:`Logger` and is constructed as ``cls(run_dir)``. Core registers ``jsonl``
(``metrics.jsonl``, always on), ``tensorboard`` and ``mlflow`` (optional dependencies,
imported only when chosen). A run picks them with ``--set loggers=tensorboard,mlflow``.
"""

from __future__ import annotations

from flow_core.loggers.base import LOGGER_METHODS, Logger, require
from flow_core.loggers.fanout import (
    ALWAYS_ON,
    LoggerSet,
    check_loggers,
    logger_names,
    open_loggers,
    take_loggers_option,
)

__all__ = [
    "ALWAYS_ON",
    "LOGGER_METHODS",
    "Logger",
    "LoggerSet",
    "check_loggers",
    "logger_names",
    "open_loggers",
    "require",
    "take_loggers_option",
]
