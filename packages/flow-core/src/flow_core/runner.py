"""Running a task: the run directory, the :class:`RunContext` handed to ``Task.run``, and
:func:`execute`, which the ``flow run`` command and :func:`flow_core.testing.run_task` share.

A run directory holds ``config.json`` (the resolved config), ``status.json`` (``running``,
then ``finished``, ``failed`` with the cause, or ``interrupted``; see
:mod:`flow_core.rundir`, which owns the directory, its lock and its states), ``metrics.jsonl``
(one line per logged step), ``metrics.json`` (final metrics), ``report.md`` with
``figures/``, and ``checkpoints/``. Under torchrun only rank 0 writes.
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from flow_core.components import KINDS
from flow_core.config import config_to_dict, load_toml, resolve_config
from flow_core.errors import ConfigError, FlowError
from flow_core.gpu import (
    DistInfo,
    broadcast_object,
    cleanup,
    init_distributed,
    resolve_device,
    seed_everything,
)
from flow_core.registry import Registry, get_registry
from flow_core.report import Report
from flow_core.rundir import (
    CONFIG,
    open_run,
    read_json,
    sigterm_interrupts,
    write_json,
    write_text,
)

__all__ = ["RunContext", "build_component", "execute"]


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
    report: Report = field(init=False)

    def __post_init__(self) -> None:
        self.report = Report(self.out_dir, f"flow run {self.task_name}")

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
        """Append one line ``{"step": step, **metrics}`` to ``metrics.jsonl`` (rank 0 only).

        ``stage`` names a training stage of a multi-stage task (``teacher``, ``reflow-1``);
        it is recorded in the line so that resuming one stage leaves the others' lines alone.
        """
        if not self.is_main:
            return
        record: dict[str, Any] = {"step": step}
        if stage:
            record["stage"] = stage
        record.update({k: float(v) for k, v in metrics.items()})
        line = json.dumps(record)
        with open(self.out_dir / "metrics.jsonl", "a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    def truncate_log(self, after_step: int, stage: str = "") -> None:
        """Drop the lines of ``stage`` logged after ``after_step`` (used when resuming)."""
        path = self.out_dir / "metrics.jsonl"
        if not self.is_main or not path.exists():
            return
        kept = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            record = json.loads(line)  # checked before the run started (rundir.check_log)
            if record.get("stage", "") != stage or record.get("step", 0) <= after_step:
                kept.append(line)
        write_text(path, "".join(line + "\n" for line in kept))

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
    previous = read_json(out / CONFIG, "the run's resolved config")
    if not isinstance(previous, dict):
        raise ConfigError(f"{out / CONFIG} is not a JSON object; it should hold the run's config")
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
) -> tuple[Path, dict[str, float]]:
    """Resolve, run and record one task; return ``(run directory, final metrics)``.

    Everything that can be checked before work starts is checked first (task name, config,
    device, seed, run directory and the files a resume reads). A failure after that marks the
    run ``failed`` (``interrupted`` on Ctrl-C or SIGTERM), or removes it when it had written
    nothing worth keeping; see :class:`flow_core.rundir.RunDirectory`.
    """
    registry = registry or get_registry()
    task_cls = registry.load("task", task_name)
    where = f" for task {task_name!r}"
    file_values = load_toml(config_file) if config_file is not None else None
    config = resolve_config(
        task_cls.Config, file_values=file_values, overrides=overrides, where=where
    )
    _check_component_names(config, registry)
    torch_device = resolve_device(device)
    seed_everything(seed)  # checks the seed before any directory is made
    dist = init_distributed(torch_device)

    run = open_run(task_name, out, resume, runs_root) if dist.is_main else None
    run_dir = Path(broadcast_object(str(run.path) if run else "", src=0))
    record = {
        "task": task_name,
        "seed": seed,
        "device": str(torch_device),
        "world_size": dist.world_size,
        "config": config_to_dict(config),
    }
    if resume:
        try:
            _check_resumable(run_dir, record)
        except BaseException:
            if run is not None:
                run.unlock()
            raise
    try:
        with sigterm_interrupts():
            if run is not None:
                run.start(record)
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
            )
            seed_everything(seed)
            metrics = _check_metrics(task_cls().run(config, ctx), task_name)
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
    if run is not None:
        run.finish()
    return run_dir, metrics
