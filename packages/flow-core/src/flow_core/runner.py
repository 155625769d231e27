"""Running a task: the run directory, the :class:`RunContext` handed to ``Task.run``, and
:func:`execute`, which the ``flow run`` command and :func:`flow_core.testing.run_task` share.

A run directory holds ``config.json`` (the resolved config), ``status.json`` (``running``,
then ``finished``, ``failed`` with the cause, or ``interrupted``; see
:mod:`flow_core.rundir`, which owns the directory, its lock and its states), ``metrics.jsonl``
(one line per logged step), ``metrics.json`` (final metrics), ``report.md`` with
``figures/``, and ``checkpoints/``. Under torchrun only rank 0 writes. Metrics and figures
also go to the loggers chosen with ``--set loggers=...`` (see :mod:`flow_core.loggers`); they
are closed when the run ends, also when it fails.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from flow_core.config import config_to_dict, flatten, load_toml, resolve_settings
from flow_core.errors import ConfigError, FlowError
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
from flow_core.options import construct, walk_fields
from flow_core.registry import Registry, get_registry, using_registry
from flow_core.report import Report
from flow_core.routing import RunPlan, config_value, plan_run
from flow_core.rundir import (
    CONFIG,
    open_run,
    read_json,
    sigterm_interrupts,
    write_json,
)

__all__ = ["RunContext", "check_metrics", "execute"]


@dataclass
class RunContext:
    """What a task sees of its run: where to write, which device, logging and the registry.

    Attributes:
        task_name, config, seed, device, registry, dist: the run's facts.
        out_dir: where this invocation writes (the run directory; for ``flow eval`` and
            ``flow sample`` a folder under ``<run>/evaluations/``).
        resume: continue from the newest checkpoint of each stage.
        plan: the components and user options decided before the run (see
            :mod:`flow_core.routing`).
        mode: ``"train"`` for ``flow run``; ``"evaluate"`` or ``"sample"`` when a finished
            run's weights are reused: then :func:`flow_core.training.train` loads each stage's
            newest checkpoint instead of training, and nothing is written to the run.
        run_dir: the run whose checkpoints are read (``out_dir`` when training).
        logger_set: the loggers the run opened (default: ``metrics.jsonl`` in ``out_dir``);
            ``loggers`` is the set in use.
        report: the run's ``report.md`` under construction.
    """

    task_name: str
    config: Any
    out_dir: Path
    device: torch.device
    seed: int
    resume: bool
    registry: Registry
    dist: DistInfo
    show_progress: bool = True
    plan: RunPlan = field(default_factory=RunPlan)
    mode: str = "train"
    run_dir: Path | None = None
    logger_set: LoggerSet | None = None
    report: Report = field(init=False)
    loggers: LoggerSet = field(init=False)

    def __post_init__(self) -> None:
        self.report = Report(self.out_dir, f"flow {self._verb} {self.task_name}")
        jsonl_only = LoggerSet({ALWAYS_ON: JsonlLogger(self.out_dir)})
        self.loggers = self.logger_set if self.logger_set is not None else jsonl_only

    @property
    def _verb(self) -> str:
        return {"train": "run", "evaluate": "eval", "sample": "sample"}[self.mode]

    @property
    def is_main(self) -> bool:
        return self.dist.is_main

    @property
    def restore_only(self) -> bool:
        """Whether training steps load checkpoints instead of training (eval and sample)."""
        return self.mode != "train"

    @property
    def checkpoint_dir(self) -> Path:
        return (self.run_dir or self.out_dir) / "checkpoints"

    def options_for(self, role: str) -> dict[str, Any]:
        """The options the user set for the component in ``role`` (``sampler.rtol=...``)."""
        return dict(self.plan.options.get(role, {}))

    def build(self, kind: str, name: str, **options: Any) -> Any:
        """Construct the registered component ``(kind, name)`` with the ``options`` its
        constructor takes (the rest are left out: tasks offer options only some take)."""
        return construct(self.registry.load(kind, name), options, {})

    def component(self, role: str, name: str | None = None, **defaults: Any) -> Any:
        """Construct the component that fills ``role`` (a component field of the config).

        Its keyword arguments are, in increasing precedence: ``defaults`` from the task
        (left out where the constructor does not take them), the config's fields declared
        as ``option(role, ...)``, and the options the user set for the role. ``name``
        replaces the chosen component (a stage that needs another sampler, say).

        Raises:
            ConfigError: the role is not used in this run, or an option the user set is
                not taken by ``name``.
        """
        info = next((f for f in walk_fields(type(self.config)) if f.path == role), None)
        if info is None or info.kind is None:
            raise ConfigError(f"{role!r} is no component field of task {self.task_name!r}")
        chosen_name = name or self.plan.components.get(role, (info.kind, None))[1]
        if chosen_name is None:
            chosen_name = config_value(self.config, role)
        if chosen_name is None:
            raise ConfigError(f"task {self.task_name!r} uses no {role} in this run")
        chosen: dict[str, Any] = {}
        merged = dict(defaults)
        for f in walk_fields(type(self.config)):
            if f.option_of is not None and f.option_of[0] == role:
                value = config_value(self.config, f.path)
                (chosen if f.path in self.plan.explicit else merged)[f.option_of[1]] = value
        chosen.update(self.options_for(role))
        cls = self.registry.load(info.kind, chosen_name)
        try:
            return construct(cls, merged, chosen)
        except TypeError as error:
            raise ConfigError(f"{info.kind} {chosen_name!r} ({role}): {error}") from None

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


def check_metrics(metrics: Any, task_name: str) -> dict[str, float]:
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
    previous = read_json(out / CONFIG, "the run's resolved config")
    if not isinstance(previous, dict):
        raise ConfigError(f"{out / CONFIG} is not a JSON object; it should hold the run's config")
    diffs = [
        f"{key}: {previous.get(key)!r} in the run, {record[key]!r} now"
        for key in ("task", "seed")
        if previous.get(key) != record[key]
    ]
    old = {
        **flatten(previous.get("config", {})),
        **flatten({"options": previous.get("options", {})}),
    }
    new = {**flatten(record["config"]), **flatten({"options": record["options"]})}
    diffs += [
        f"{key}: {old.get(key)!r} in the run, {new.get(key)!r} now"
        for key in sorted(set(old) | set(new))
        if old.get(key) != new.get(key)
    ]
    if diffs:
        raise ConfigError(
            f"--resume: the config differs from the run in {out}: " + "; ".join(diffs)
        )


def _resumed_loggers(run_dir: Path, requested: list[str]) -> list[str]:
    """On ``--resume`` without ``loggers``, the loggers recorded in the run's ``config.json``."""
    if requested:
        return requested
    previous = read_json(run_dir / CONFIG, "the run's resolved config")
    named = previous.get("loggers", []) if isinstance(previous, dict) else []
    return [str(name) for name in named]


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

    ``loggers`` adds to those named by a ``loggers`` key in ``overrides`` or the config file;
    ``jsonl`` is always on.

    Everything that can be checked before work starts is checked first (task name, config,
    device, seed, run directory and the files a resume reads). A failure after that marks the
    run ``failed`` (``interrupted`` on Ctrl-C or SIGTERM), or removes it when it had written
    nothing worth keeping; see :class:`flow_core.rundir.RunDirectory`.
    """
    registry = registry or get_registry()
    with using_registry(registry):
        return _execute(
            task_name,
            overrides=overrides,
            config_file=config_file,
            out=out,
            device=device,
            seed=seed,
            resume=resume,
            registry=registry,
            show_progress=show_progress,
            runs_root=runs_root,
            loggers=loggers,
        )


def _execute(
    task_name: str,
    *,
    overrides: Iterable[tuple[str, str]],
    config_file: Path | None,
    out: Path | None,
    device: str,
    seed: int,
    resume: bool,
    registry: Registry,
    show_progress: bool,
    runs_root: Path,
    loggers: Sequence[str],
) -> tuple[Path, dict[str, float]]:
    task_cls = registry.load("task", task_name)
    task = task_cls()
    where = f" for task {task_name!r}"
    file_values = load_toml(config_file) if config_file is not None else None
    overrides, file_values, named = take_loggers_option(overrides, file_values)
    chosen = [*loggers, *named]
    check_loggers(chosen, registry)
    resolution = resolve_settings(
        task_cls.Config, file_values=file_values, overrides=overrides, where=where
    )
    config = resolution.config
    plan = plan_run(task, resolution, registry, where)
    torch_device = resolve_device(device)
    seed_everything(seed)  # checks the seed before any directory is made
    dist = init_distributed(torch_device)

    run = open_run(task_name, out, resume, runs_root) if dist.is_main else None
    run_dir = Path(broadcast_object(str(run.path) if run else "", src=0))
    if resume:
        try:
            chosen = _resumed_loggers(run_dir, chosen)
            check_loggers(chosen, registry)
        except BaseException:
            if run is not None:
                run.unlock()
            raise
    record = {
        "task": task_name,
        "seed": seed,
        "device": str(torch_device),
        "world_size": dist.world_size,
        "loggers": logger_names(chosen),
        "config": config_to_dict(config),
        "options": plan.options,
    }
    if resume:
        try:
            _check_resumable(run_dir, record)
        except BaseException:
            if run is not None:
                run.unlock()
            raise
    logger_set: LoggerSet | None = None
    try:
        with sigterm_interrupts():
            if run is not None:
                run.start(record)
            logger_set = open_loggers(chosen, run_dir, registry, record) if run else LoggerSet({})
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
                plan,
                logger_set=logger_set,
            )
            seed_everything(seed)
            metrics = check_metrics(task.run(config, ctx), task_name)
            ctx.loggers.log_figures(ctx.report.figures)
            cleanup()
            if dist.is_main:
                write_json(run_dir / "metrics.json", metrics)
                header = {
                    "task": task_name,
                    "seed": seed,
                    "device": str(torch_device),
                    "processes": dist.world_size,
                    "run directory": str(run_dir),
                }
                ctx.report.write(metrics, header)
    except BaseException as error:
        if run is not None:
            run.abandon(error)
        raise
    finally:
        if logger_set is not None:
            logger_set.close()
    if run is not None:
        run.finish()
    return run_dir, metrics
