"""``flow eval`` and ``flow sample``: reuse a run's weights without touching the run.

Both read ``<run>/config.json``, apply ``--set`` overrides to the stored config (another
sampler, number of steps, guidance weight, number of samples, seed), and call the task with a
:class:`~flow_core.runner.RunContext` in ``evaluate`` or ``sample`` mode: every training stage
then loads its newest checkpoint instead of training (a finished run's final weights, or an
interrupted run's latest), and everything is written to a new folder
``<run>/evaluations/<time>/`` with its own ``config.json``, ``metrics.json``, ``report.md`` and
figures. ``flow sample`` also writes the samples, as ``samples.safetensors`` and one ``.npy``
file per tensor, for use outside the project.

A task supports them by defining ``evaluate(config, ctx)`` and ``sample(config, ctx, count)``
(see :class:`flow_core.protocols.Task`); the training section cannot change in an evaluation.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from flow_core.config import Resolution, config_to_dict, flatten, resolve_settings
from flow_core.errors import FlowError, UsageError
from flow_core.gpu import DistInfo, resolve_device, seed_everything
from flow_core.registry import Registry, get_registry, using_registry
from flow_core.routing import plan_run
from flow_core.rundir import timestamp, write_json
from flow_core.runner import RunContext, check_metrics

__all__ = ["evaluate_run"]

MODES = {"evaluate": "evaluate", "sample": "sample"}


def _read_record(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "config.json"
    if not run_dir.is_dir() or not path.is_file():
        raise UsageError(
            f"{run_dir} is not a run directory (it has no config.json); pass a folder that"
            " `flow run` wrote, e.g. runs/<task>/<timestamp>"
        )
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UsageError(f"{path} is not readable JSON: {error}") from None
    if not isinstance(record, dict) or "task" not in record or "config" not in record:
        raise UsageError(f"{path} does not describe a run (it has no 'task' and 'config')")
    return record


def _resolve(
    config_cls: type[Any], record: Mapping[str, Any], overrides: list[tuple[str, str]], where: str
) -> Resolution:
    stored = {**record["config"], **flatten(record.get("options", {}))}
    changed = resolve_settings(config_cls, overrides=overrides, where=where).explicit
    training = sorted(path for path in changed if path.startswith("train."))
    if training:
        raise UsageError(
            f"flow eval and flow sample reuse the trained weights: the training section cannot"
            f" change ({', '.join(training)}); start a new run with flow run instead"
        )
    full = resolve_settings(config_cls, file_values=stored, overrides=overrides, where=where)
    return Resolution(full.config, changed, full.extras)


def evaluate_run(
    run_dir: Path | str,
    *,
    mode: str = "evaluate",
    overrides: Iterable[tuple[str, str]] = (),
    count: int = 64,
    device: str = "auto",
    seed: int | None = None,
    registry: Registry | None = None,
    show_progress: bool = True,
) -> tuple[Path, dict[str, float]]:
    """Evaluate (``mode="evaluate"``) or sample from (``mode="sample"``) a run's weights.

    Returns the new folder under ``<run>/evaluations/`` and its metrics.

    Raises:
        UsageError: ``run_dir`` is not a run, the task has no ``evaluate``/``sample``, or an
            override is invalid or would change the training section.
    """
    if mode not in MODES:
        raise UsageError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    run_dir = Path(run_dir)
    record = _read_record(run_dir)
    registry = registry or get_registry()
    with using_registry(registry):
        task_name = str(record["task"])
        task = registry.load("task", task_name)()
        method = getattr(task, mode, None)
        if not callable(method):
            command = "eval" if mode == "evaluate" else "sample"
            raise UsageError(
                f"task {task_name!r} does not support flow {command}: it defines no {mode}()"
            )
        if mode == "sample" and count < 1:
            raise UsageError(f"--count must be >= 1, got {count}")
        where = f" for task {task_name!r}"
        resolution = _resolve(task.Config, record, list(overrides), where)
        plan = plan_run(task, resolution, registry, where)
        torch_device = resolve_device(device)
        run_seed = int(record.get("seed", 0)) if seed is None else seed
        out_dir = _new_folder(run_dir / "evaluations")
        entry = {
            "task": task_name,
            "mode": mode,
            "run": str(run_dir),
            "seed": run_seed,
            "device": str(torch_device),
            "overrides": dict(overrides),
            "config": config_to_dict(resolution.config),
            "options": plan.options,
        }
        write_json(out_dir / "config.json", entry)
        ctx = RunContext(
            task_name,
            resolution.config,
            out_dir,
            torch_device,
            run_seed,
            False,
            registry,
            DistInfo(0, 0, 1),
            show_progress,
            plan,
            mode=mode,
            run_dir=run_dir,
        )
        seed_everything(run_seed)
        try:
            if mode == "sample":
                metrics = _write_samples(out_dir, method(resolution.config, ctx, count))
            else:
                metrics = check_metrics(method(resolution.config, ctx), task_name)
        except BaseException as error:
            write_json(out_dir / "status.json", {"state": "failed", "error": str(error)})
            raise
        write_json(out_dir / "metrics.json", metrics)
        header = {"task": task_name, "run": str(run_dir), "seed": run_seed, "mode": mode}
        ctx.report.write(metrics, header)
        write_json(out_dir / "status.json", {"state": "finished", "ended": timestamp()})
    return out_dir, metrics


def _new_folder(root: Path) -> Path:
    base = root / timestamp()
    out, n = base, 1
    while out.exists():
        out, n = base.with_name(f"{base.name}-{n}"), n + 1
    out.mkdir(parents=True)
    return out


def _write_samples(out_dir: Path, samples: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """``samples.safetensors`` and ``<name>.npy`` for each tensor; metrics: the counts."""
    if not isinstance(samples, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in samples.values()
    ):
        raise FlowError("a task's sample() must return a mapping of names to tensors")
    tensors = {k: v.detach().cpu().contiguous() for k, v in samples.items()}
    save_file(tensors, str(out_dir / "samples.safetensors"))
    for name, tensor in tensors.items():
        np.save(out_dir / f"{name}.npy", tensor.numpy())
    return {f"{name}_count": float(tensor.shape[0]) for name, tensor in tensors.items()}
