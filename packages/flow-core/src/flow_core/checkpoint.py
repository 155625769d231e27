"""Atomic, resumable checkpoints that never unpickle arbitrary objects.

A checkpoint is a directory ``checkpoints/step-<N>/`` holding

* ``weights.safetensors`` — every tensor of the model (and EMA), by name;
* ``state.pt`` — everything else (optimizer state, step, RNG states), read back with
  ``torch.load(weights_only=True)``, which refuses anything but tensors and plain containers.

It is written into a temporary sibling directory and renamed into place, then the file
``checkpoints/latest`` (itself replaced atomically) names it. A process killed at any moment
leaves either the previous checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from flow_core.errors import CheckpointError

__all__ = ["latest_checkpoint", "load_checkpoint", "save_checkpoint"]

WEIGHTS = "weights.safetensors"
STATE = "state.pt"
LATEST = "latest"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def save_checkpoint(
    directory: Path,
    step: int,
    tensors: Mapping[str, torch.Tensor],
    state: Mapping[str, Any],
    keep: int = 2,
) -> Path:
    """Write checkpoint ``step`` under ``directory`` atomically; keep the newest ``keep``."""
    directory.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:08d}"
    final = directory / name
    tmp = directory / f".{name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    # clone: safetensors refuses tensors that share storage (tied weights, views)
    save_file(
        {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()},
        str(tmp / WEIGHTS),
    )
    torch.save(dict(state), tmp / STATE)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    _write_atomic(directory / LATEST, name)
    older = sorted(p for p in directory.glob("step-*") if p.is_dir() and p.name != name)
    for stale in older[: max(0, len(older) - (keep - 1))]:
        shutil.rmtree(stale, ignore_errors=True)
    return final


def latest_checkpoint(directory: Path) -> Path | None:
    """The checkpoint that ``latest`` names, or ``None`` when there is none yet."""
    pointer = directory / LATEST
    if not pointer.exists():
        return None
    path = directory / pointer.read_text(encoding="utf-8").strip()
    if not path.is_dir():
        raise CheckpointError(f"{pointer} names {path.name!r}, which does not exist")
    return path


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read ``(tensors, state)`` from a checkpoint directory, safely."""
    try:
        tensors = load_file(str(path / WEIGHTS))
    except (OSError, SafetensorError) as error:
        raise CheckpointError(
            f"checkpoint weights {path / WEIGHTS} are unreadable: {error}"
        ) from None
    try:
        state = torch.load(path / STATE, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(
            f"checkpoint state {path / STATE} is unreadable: {type(error).__name__}: {error}"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint state {path / STATE} is not a dict")
    return tensors, state
