"""Choosing and opening a run's loggers, and :class:`LoggerSet`, which fans calls out to them.

The ``jsonl`` logger is always on; the others are named with ``--set loggers=a,b`` (or a
``loggers`` key in the config file) and looked up in the registry under the kind ``logger``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flow_core.errors import ConfigError, PluginError
from flow_core.loggers.base import LOGGER_METHODS, Logger

if TYPE_CHECKING:
    from flow_core.registry import Registry

__all__ = [
    "ALWAYS_ON",
    "LoggerSet",
    "check_loggers",
    "logger_names",
    "open_loggers",
    "take_loggers_option",
]

ALWAYS_ON = "jsonl"
"""The logger every run has, whether named or not."""

OPTION = "loggers"


def _split(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        return [name.strip() for name in value.split(",") if name.strip()]
    if isinstance(value, list) and all(isinstance(name, str) for name in value):
        return [name.strip() for name in value if name.strip()]
    raise ConfigError(
        f"{where}: {OPTION!r} must be a comma-separated string or a list of logger names,"
        f" got {value!r}; e.g. loggers=tensorboard,mlflow"
    )


def take_loggers_option(
    overrides: Iterable[tuple[str, str]], file_values: Mapping[str, Any] | None = None
) -> tuple[list[tuple[str, str]], dict[str, Any] | None, list[str]]:
    """Take the ``loggers`` key out of ``--set`` overrides and config-file values.

    Returns the overrides and file values without it, and the logger names they gave (file
    first, then each ``--set`` in order), so that the rest resolves as the task's config.
    """
    names: list[str] = []
    rest_file = None
    if file_values is not None:
        rest_file = {k: v for k, v in file_values.items() if k != OPTION}
        if OPTION in file_values:
            names += _split(file_values[OPTION], "config file")
    rest: list[tuple[str, str]] = []
    for key, value in overrides:
        if key == OPTION:
            names += _split(value, "--set")
        else:
            rest.append((key, value))
    return rest, rest_file, names


def logger_names(requested: Iterable[str]) -> list[str]:
    """``jsonl`` followed by the requested names, each once, in order."""
    names = [ALWAYS_ON]
    names += [name for name in dict.fromkeys(requested) if name != ALWAYS_ON]
    return names


def check_loggers(requested: Iterable[str], registry: Registry) -> dict[str, Any]:
    """The logger classes for ``jsonl`` plus ``requested``, each checked to be usable.

    Raises:
        UnknownComponentError: a name is not a registered logger (close matches suggested).
        UsageError: a logger's optional dependency is missing (the pip command is named).
    """
    classes: dict[str, Any] = {}
    for name in logger_names(requested):
        cls = registry.load("logger", name)
        check = getattr(cls, "check_available", None)
        if callable(check):
            check()
        classes[name] = cls
    return classes


class LoggerSet:
    """Several loggers used as one; :meth:`close` closes each even if another fails."""

    def __init__(self, loggers: Mapping[str, Logger]) -> None:
        self._loggers = dict(loggers)

    @property
    def names(self) -> list[str]:
        return list(self._loggers)

    def __getitem__(self, name: str) -> Logger:
        return self._loggers[name]

    def log_metrics(self, step: int, metrics: Mapping[str, float], stage: str = "") -> None:
        for logger in self._loggers.values():
            logger.log_metrics(step, metrics, stage)

    def log_figure(self, name: str, path: Path) -> None:
        for logger in self._loggers.values():
            logger.log_figure(name, path)

    def log_figures(self, paths: Iterable[Path]) -> None:
        """Send each saved figure, named by its file stem (paths never saved are skipped)."""
        for path in paths:
            if path.is_file():
                self.log_figure(path.stem, path)

    def log_config(self, config: Mapping[str, Any]) -> None:
        for logger in self._loggers.values():
            logger.log_config(config)

    def truncate(self, after_step: int, stage: str = "") -> None:
        """Drop what ``stage`` logged after ``after_step``, in the loggers that can (resume)."""
        for logger in self._loggers.values():
            truncate = getattr(logger, "truncate", None)
            if callable(truncate):
                truncate(after_step, stage)

    def close(self) -> None:
        failure: BaseException | None = None
        for logger in self._loggers.values():
            try:
                logger.close()
            except BaseException as error:
                failure = failure or error
        if failure is not None:
            raise failure


def open_loggers(
    names: Sequence[str], run_dir: Path, registry: Registry, config_record: Mapping[str, Any]
) -> LoggerSet:
    """Construct ``jsonl`` and the named loggers on ``run_dir`` and log ``config_record``.

    Raises:
        PluginError: a logger class builds an object without the :class:`Logger` methods.
    """
    opened: dict[str, Logger] = {}
    try:
        for name, cls in check_loggers(names, registry).items():
            opened[name] = logger = cls(run_dir)
            if not isinstance(logger, Logger):
                raise PluginError(
                    f"logger {name!r} ({cls.__module__}.{cls.__qualname__}) lacks a method of"
                    f" flow_core.loggers.Logger: {', '.join(LOGGER_METHODS)}"
                )
        loggers = LoggerSet(opened)
        loggers.log_config(config_record)
    except BaseException:
        LoggerSet(opened).close()
        raise
    return loggers
