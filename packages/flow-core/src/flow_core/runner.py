"""Running a task: the run directory, the :class:`RunContext` handed to ``Task.run``, and
:func:`execute`, which the ``flow run`` command and :func:`flow_core.testing.run_task` share.

A run directory holds ``config.json`` (the resolved config), ``status.json`` (``running``,
``completed`` or ``failed`` with the cause, so an interrupted run is never mistaken for a
finished one), ``metrics.jsonl`` (one line per logged step), ``metrics.json`` (final metrics),
``report.md`` with ``figures/``, and ``checkpoints/``. Under torchrun only rank 0 writes.
Metrics and figures also go to the loggers chosen with ``--set loggers=...`` (see
:mod:`flow_core.loggers`); they are closed when the run ends, also when it fails.
"""

from __future__ import annotations

import inspect
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from flow_core.components import KINDS
from flow_core.config import config_to_dict, load_toml, resolve_config
from flow_core.errors import ConfigError, FlowError, UsageError
from flow_core.gpu import (
    DistInfo,
    broadcast_object,
    cleanup,
    init_distributed,
    resolve_device,
    seed_everything,
)
from flow_core.loggers import (
    ALWAYS_ON,
    LoggerSet,
    check_loggers,
    logger_names,
    open_loggers,
    take_loggers_option,
)
from flow_core.loggers.jsonl import JsonlLogger
from flow_core.registry import Registry, get_registry
from flow_core.report import Report

__all__ = ["RunContext", "build_component", "execute", "prepare_run_dir"]


def build_component(cls: Any, **options: Any) -> Any:
    """Construct ``cls`` with the subset of ``options`` its constructor accepts.

    Tasks offer options that only some components take (``steps`` for a fixed-step sampler,
    ``rtol`` for an adaptive one); each component picks the ones it understands.
    """
    params = inspect.signature(cls).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return cls(**options)
    return cls(**{k: v for k, v in options.items() if k in params})


@dataclass
class RunContext:
    """What a task sees of its run: where to write, which device, logging and the registry."""

    task_name: str
    config: Any
    out_dir: Path
    device: torch.device
    seed: int
    resume: bool
    registry: Registry
    dist: DistInfo
    show_progress: bool = True
    logger_set: LoggerSet | None = None
    report: Report = field(init=False)
    loggers: LoggerSet = field(init=False)

    def __post_init__(self) -> None:
        self.report = Report(self.out_dir, f"flow run {self.task_name}")
        jsonl_only = LoggerSet({ALWAYS_ON: JsonlLogger(self.out_dir)})
        self.loggers = self.logger_set if self.logger_set is not None else jsonl_only

    @property
    def is_main(self) -> bool:
        return self.dist.is_main

    @property
    def checkpoint_dir(self) -> Path:
        return self.out_dir / "checkpoints"

    def build(self, kind: str, name: str, **options: Any) -> Any:
        """Construct the registered component ``(kind, name)`` (see :func:`build_component`)."""
        return build_component(self.registry.load(kind, name), **options)

    def build_for_model(self, kind: str, name: str, model_kind: str, **options: Any) -> Any:
        """:meth:`build`, refusing a component made for another ``model_kind`` of network.

        Raises:
            ConfigError: the component declares another ``model_kind``; the message lists
                the registered components of ``kind`` that fit.
        """
        component = self.build(kind, name, **options)
        found = getattr(component, "model_kind", model_kind)
        if found != model_kind:
            matching = [
                entry.name
                for entry in self.registry.entries(kind)
                if getattr(entry.load(), "model_kind", None) == model_kind
            ]
            raise ConfigError(
                f"{kind} {name!r} is for {found} models, but this run trains a {model_kind} "
                f"model; use one of: {', '.join(matching)}"
            )
        return component

    def log(self, step: int, metrics: Mapping[str, float], stage: str = "") -> None:
        """Send one step's metrics to the run's loggers (rank 0 only): always a line
        ``{"step": step, **metrics}`` in ``metrics.jsonl``.

        ``stage`` names a training stage of a multi-stage task (``teacher``, ``reflow-1``);
        it is recorded in the line so that resuming one stage leaves the others' lines alone.
        """
        if self.is_main:
            self.loggers.log_metrics(step, metrics, stage)

    def truncate_log(self, after_step: int, stage: str = "") -> None:
        """Drop the lines of ``stage`` logged after ``after_step`` (used when resuming)."""
        if self.is_main:
            self.loggers.truncate(after_step, stage)

    def progress(self, total: int, desc: str, initial: int = 0) -> tqdm[Any]:
        """A progress bar on stderr (silent on non-main ranks or when disabled)."""
        return tqdm(
            total=total,
            initial=initial,
            desc=desc,
            disable=not (self.show_progress and self.is_main),
            dynamic_ncols=True,
            mininterval=0.5,
            leave=False,
        )


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _timestamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")


def prepare_run_dir(task_name: str, out: Path | None, resume: bool, runs_root: Path) -> Path:
    """Choose the run directory: ``out``, or ``runs/<task>/<timestamp>``, or on ``resume``
    the given or newest existing run of the task."""
    if resume:
        if out is None:
            candidates = sorted(p for p in (runs_root / task_name).glob("*") if p.is_dir())
            if not candidates:
                raise UsageError(
                    f"--resume: no earlier run of {task_name!r} under {runs_root / task_name};"
                    " pass --out DIR to name the run to resume"
                )
            out = candidates[-1]
        if not (out / "config.json").exists():
            raise UsageError(f"--resume: {out} is not a run directory (it has no config.json)")
        return out
    if out is None:
        base = runs_root / task_name / _timestamp()
        out, n = base, 1
        while out.exists():
            out, n = base.with_name(f"{base.name}-{n}"), n + 1
    elif out.exists() and any(out.iterdir()):
        raise UsageError(
            f"--out {out} already exists and is not empty; pass --resume to continue it,"
            " or choose another directory"
        )
    return out


def _check_metrics(metrics: Any, task_name: str) -> dict[str, float]:
    if not isinstance(metrics, Mapping):
        raise FlowError(f"task {task_name!r} returned {type(metrics).__name__}, not a mapping")
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise FlowError(f"task {task_name!r} returned metric {key!r}={value!r}, not a number")
        out[str(key)] = float(value) if not math.isnan(float(value)) else float("nan")
    return out


def _check_resumable(out: Path, record: Mapping[str, Any]) -> None:
    previous = json.loads((out / "config.json").read_text(encoding="utf-8"))
    diffs = [
        f"{key}: {previous.get(key)!r} in the run, {record[key]!r} now"
        for key in ("task", "seed")
        if previous.get(key) != record[key]
    ]
    old, new = previous.get("config", {}), record["config"]
    diffs += [
        f"{key}: {old.get(key)!r} in the run, {new.get(key)!r} now"
        for key in sorted(set(old) | set(new))
        if old.get(key) != new.get(key)
    ]
    if diffs:
        raise ConfigError(
            f"--resume: the config differs from the run in {out}: " + "; ".join(diffs)
        )


def _check_component_names(config: Any, registry: Registry) -> None:
    """A config field named after a registry kind (``objective``, ``sampler``, ...) holds a
    component name of that kind: check that it exists, and that the components agree on the
    kind of model (velocity, average-velocity, invertible), before any work starts."""
    model_kinds: dict[str, str] = {}
    for kind in KINDS:
        value = getattr(config, kind, None)
        if isinstance(value, str):
            model_kind = getattr(registry.load(kind, value), "model_kind", None)
            if isinstance(model_kind, str):
                model_kinds[f"{kind} {value!r}"] = model_kind
    if len(set(model_kinds.values())) > 1:
        described = ", ".join(f"{name} works on {mk} models" for name, mk in model_kinds.items())
        raise ConfigError(f"these components do not fit together: {described}")


def _resumed_loggers(run_dir: Path, requested: list[str]) -> list[str]:
    """On ``--resume`` without ``loggers``, the loggers recorded in the run's ``config.json``."""
    if requested:
        return requested
    previous = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    return [str(name) for name in previous.get("loggers", [])]


def execute(
    task_name: str,
    *,
    overrides: Iterable[tuple[str, str]] = (),
    config_file: Path | None = None,
    out: Path | None = None,
    device: str = "auto",
    seed: int = 0,
    resume: bool = False,
    registry: Registry | None = None,
    show_progress: bool = True,
    runs_root: Path = Path("runs"),
    loggers: Sequence[str] = (),
) -> tuple[Path, dict[str, float]]:
    """Resolve, run and record one task; return ``(run directory, final metrics)``.

    Everything that can be checked before work starts is checked first (task name, config,
    loggers and their dependencies, device, run directory). A failure after that marks the
    run ``failed`` in ``status.json``. ``loggers`` adds to those named by a ``loggers`` key
    in ``overrides`` or the config file; ``jsonl`` is always on.
    """
    registry = registry or get_registry()
    task_cls = registry.load("task", task_name)
    where = f" for task {task_name!r}"
    file_values = load_toml(config_file) if config_file is not None else None
    overrides, file_values, named = take_loggers_option(overrides, file_values)
    chosen = [*loggers, *named]
    config = resolve_config(
        task_cls.Config, file_values=file_values, overrides=overrides, where=where
    )
    _check_component_names(config, registry)
    check_loggers(chosen, registry)
    torch_device = resolve_device(device)
    dist = init_distributed(torch_device)

    run_dir = prepare_run_dir(task_name, out, resume, runs_root) if dist.is_main else None
    run_dir = Path(broadcast_object(str(run_dir) if run_dir else "", src=0))
    if resume:
        chosen = _resumed_loggers(run_dir, chosen)
        check_loggers(chosen, registry)
    record = {
        "task": task_name,
        "seed": seed,
        "device": str(torch_device),
        "world_size": dist.world_size,
        "loggers": logger_names(chosen),
        "config": config_to_dict(config),
    }
    if resume:
        _check_resumable(run_dir, record)
    if dist.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        _write_json(run_dir / "config.json", record)
        _write_json(run_dir / "status.json", {"state": "running", "started": _timestamp()})

    logger_set = open_loggers(chosen, run_dir, registry, record) if dist.is_main else None
    ctx = RunContext(
        task_name,
        config,
        run_dir,
        torch_device,
        seed,
        resume,
        registry,
        dist,
        show_progress,
        logger_set=logger_set or LoggerSet({}),
    )
    seed_everything(seed)
    try:
        metrics = _check_metrics(task_cls().run(config, ctx), task_name)
        ctx.loggers.log_figures(ctx.report.figures)
    except BaseException as error:
        if dist.is_main:
            cause = f"{type(error).__name__}: {error}".strip().rstrip(":")
            _write_json(
                run_dir / "status.json", {"state": "failed", "error": cause, "ended": _timestamp()}
            )
        raise
    finally:
        ctx.loggers.close()
    cleanup()
    if dist.is_main:
        _write_json(run_dir / "metrics.json", metrics)
        header = {
            "task": task_name,
            "seed": seed,
            "device": str(torch_device),
            "processes": dist.world_size,
            "run directory": str(run_dir),
        }
        ctx.report.write(metrics, header)
        _write_json(run_dir / "status.json", {"state": "completed", "ended": _timestamp()})
    return run_dir, metrics
