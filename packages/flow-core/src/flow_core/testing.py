"""Helpers for plugin authors' tests (also a pytest plugin, loaded through ``pytest11``).

* :func:`check_plugin` — a conformance check of a plugin module;
* :func:`isolated_registry` — a registry of core plus given plugin modules, no entry points;
* :func:`run_task` — run a task exactly as ``flow run`` does and return its metrics;
* :func:`run_context` — a CPU :class:`~flow_core.runner.RunContext` for calling
  :func:`flow_core.training.train` directly in a test;
* fixture ``flow_registry`` — a factory for isolated registries.

This module imports nothing heavy at import time, because pytest loads it in every session of
an environment where flow-core is installed.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from flow_core.registry import Registry
    from flow_core.runner import RunContext

__all__ = ["check_plugin", "flow_registry", "isolated_registry", "run_context", "run_task"]


def isolated_registry(*modules: types.ModuleType) -> Registry:
    """A registry holding flow-core's built-ins and ``modules``; installed plugins are ignored."""
    from flow_core.plugins import load_plugins
    from flow_core.registry import Registry

    return Registry(load_plugins(entry_points_=[], extra_modules=modules))


def check_plugin(module: types.ModuleType) -> None:
    """Assert that ``module`` is a well-formed flow plugin; list every problem found."""
    from flow_core.components import KINDS
    from flow_core.plugins import FLOW_PLUGIN_API

    problems: list[str] = []
    api = getattr(module, "FLOW_PLUGIN_API", None)
    if api != FLOW_PLUGIN_API:
        problems.append(f"FLOW_PLUGIN_API is {api!r}; this flow-core expects {FLOW_PLUGIN_API}")
    hooks = [f"flow_register_{kind}s" for kind in KINDS]
    if not any(hasattr(module, h) for h in hooks):
        problems.append(f"defines none of the hooks {', '.join(hooks)}")
    try:
        registry = isolated_registry(module)
    except Exception as error:
        problems.append(f"does not load: {type(error).__name__}: {error}")
        raise AssertionError(f"plugin {module.__name__}:\n  " + "\n  ".join(problems)) from error
    name = module.__name__.split(".", 1)[0].removeprefix("flow_").replace("_", "-")
    for entry in registry.entries():
        if entry.plugin.name != name:
            continue
        try:
            obj = entry.load()
        except Exception as error:
            problems.append(
                f"{entry.kind} {entry.name!r}: target {entry.component.target!r}"
                f" does not import: {type(error).__name__}: {error}"
            )
            continue
        if not entry.component.summary.strip():
            problems.append(f"{entry.kind} {entry.name!r} has an empty summary")
        if entry.kind == "task":
            problems += _check_task(entry.name, obj)
            problems += _check_task_components(entry.name, obj, registry)
        if entry.kind in ("flow", "objective", "sampler"):
            problems += _check_model_kind(entry.kind, entry.name, obj)
        if entry.kind == "logger":
            problems += _check_logger(entry.name, obj)
    if problems:
        raise AssertionError(f"plugin {module.__name__}:\n  " + "\n  ".join(problems))


def _check_task(name: str, task_cls: Any) -> list[str]:
    config_cls: Any = getattr(task_cls, "Config", None)
    problems: list[str] = []
    if not isinstance(config_cls, type) or not dataclasses.is_dataclass(config_cls):
        return [f"task {name!r} has no dataclass Config"]
    params = getattr(config_cls, "__dataclass_params__", None)
    if params is None or not params.frozen:
        problems.append(f"task {name!r}: Config must be a frozen dataclass")
    try:
        config_cls()
    except Exception as error:
        problems.append(f"task {name!r}: Config() fails with defaults: {error}")
    if not callable(getattr(task_cls, "run", None)):
        problems.append(f"task {name!r} has no run(config, ctx) method")
    return problems


def _check_model_kind(kind: str, name: str, obj: Any) -> list[str]:
    """Flows, objectives and samplers declare the model kind the runner checks runs against,
    and have the methods their protocol names (see :mod:`flow_core.protocols`)."""
    from flow_core.protocols import MODEL_KINDS

    problems: list[str] = []
    model_kind = getattr(obj, "model_kind", None)
    if model_kind not in MODEL_KINDS:
        problems.append(
            f"{kind} {name!r} declares model_kind={model_kind!r}; expected one of"
            f" {', '.join(MODEL_KINDS)} (a class attribute)"
        )
    needed: tuple[str, ...] = {
        "sampler": ("sample",),
        "objective": ("__call__",),
        "flow": ("forward",),
    }[kind]
    if model_kind == "invertible" and kind == "flow":
        needed = ("forward", "inverse")
    missing = [m for m in needed if not callable(getattr(obj, m, None))]
    if missing:
        problems.append(f"{kind} {name!r} lacks {', '.join(missing)}()")
    prepare = getattr(obj, "prepare", None)
    if kind == "objective" and prepare is not None and not callable(prepare):
        problems.append(f"objective {name!r}: prepare must be a method prepare(teacher, grid)")
    return problems


def _check_task_components(name: str, task_cls: Any, registry: Registry) -> list[str]:
    """The task's default config passes the runner's checks (components exist and agree),
    and its training section, if any, is the shared one under the field ``train``."""
    from flow_core.config import resolve_settings
    from flow_core.errors import FlowError
    from flow_core.registry import using_registry
    from flow_core.routing import plan_run
    from flow_core.training import TrainSettings

    config_cls: Any = getattr(task_cls, "Config", None)
    if not isinstance(config_cls, type) or not dataclasses.is_dataclass(config_cls):
        return []
    problems: list[str] = []
    for f in dataclasses.fields(config_cls):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else None
        if isinstance(default, TrainSettings) and f.name != "train":
            problems.append(f"task {name!r}: the training section must be the field 'train'")
    for method in ("components", "evaluate", "sample"):
        if hasattr(task_cls, method) and not callable(getattr(task_cls, method)):
            problems.append(f"task {name!r}: {method} must be a method")
    try:
        with using_registry(registry):
            plan_run(task_cls(), resolve_settings(config_cls), registry)
    except (FlowError, TypeError) as error:
        problems.append(f"task {name!r}: its default config does not pass the run checks: {error}")
    return problems


def _check_logger(name: str, logger_cls: Any) -> list[str]:
    from flow_core.loggers import LOGGER_METHODS

    missing = [m for m in LOGGER_METHODS if not callable(getattr(logger_cls, m, None))]
    if missing:
        return [f"logger {name!r} lacks the Logger method(s) {', '.join(missing)}"]
    return []


def run_task(
    name: str,
    out_dir: str | Path,
    overrides: Mapping[str, object] | None = None,
    seed: int = 0,
    registry: Registry | None = None,
) -> dict[str, float]:
    """Run task ``name`` into ``out_dir`` (a ``str`` or ``Path``, as ``flow run`` would) and
    return its metrics."""
    from flow_core.runner import execute

    sets = [(k, str(v)) for k, v in (overrides or {}).items()]
    _, metrics = execute(
        name,
        overrides=sets,
        out=Path(out_dir),
        device="cpu",
        seed=seed,
        registry=registry,
        show_progress=False,
    )
    return metrics


def run_context(
    run_dir: str | Path,
    *,
    resume: bool = False,
    seed: int = 0,
    task: str = "test",
    registry: Registry | None = None,
) -> RunContext:
    """A single-process CPU run context writing into ``run_dir`` (created if missing), for
    tests that call :func:`flow_core.training.train` without the runner."""
    import torch

    from flow_core.gpu import DistInfo
    from flow_core.runner import RunContext

    folder = Path(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return RunContext(
        task,
        None,
        folder,
        torch.device("cpu"),
        seed,
        resume,
        registry if registry is not None else isolated_registry(),
        DistInfo(0, 0, 1),
        show_progress=False,
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``gpu`` marker used for tests that need CUDA."""
    config.addinivalue_line("markers", "gpu: needs a CUDA device (skipped without one)")


@pytest.fixture
def flow_registry() -> Callable[..., Registry]:
    """A factory: ``flow_registry(module, ...)`` gives an isolated registry."""
    return isolated_registry
