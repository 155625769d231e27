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
import pickle
import re
import shutil
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from flow_core.errors import CheckpointError

__all__ = ["latest_checkpoint", "load_checkpoint", "newest_checkpoint", "save_checkpoint"]

WEIGHTS = "weights.safetensors"
STATE = "state.pt"
LATEST = "latest"
STEP_NAME = re.compile(r"step-[0-9]{8,}")


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


def _complete(directory: Path, name: str) -> Path | None:
    """``directory/name`` when it is a whole checkpoint that stays inside ``directory``."""
    path = directory / name
    if not STEP_NAME.fullmatch(name) or path.is_symlink() or not path.is_dir():
        return None
    if path.resolve().parent != directory.resolve():
        return None
    files = [path / WEIGHTS, path / STATE]
    if any(f.is_symlink() or not f.is_file() for f in files):
        return None
    return path


def newest_checkpoint(directory: Path) -> Path | None:
    """The newest complete ``step-N`` directory directly in ``directory``, or ``None``."""
    if not directory.is_dir():
        return None
    names = sorted(p.name for p in directory.iterdir() if STEP_NAME.fullmatch(p.name))
    for name in reversed(names):
        path = _complete(directory, name)
        if path is not None:
            return path
    return None


def latest_checkpoint(directory: Path) -> Path | None:
    """The checkpoint to resume from, always a step directory inside ``directory``.

    ``latest`` must hold a bare name ``step-NNNNNNNN`` of a complete, non-symlinked step
    directory next to it. An empty, unreadable or dangling ``latest`` (or none at all) falls
    back to the newest complete step; ``None`` when there is no checkpoint.

    A ``latest`` that tries to leave the directory (a path, an absolute name, a symlink) is
    never followed: the newest complete step is used instead, with a warning.

    Raises:
        CheckpointError: ``latest`` cannot be followed and there is no complete step to
            fall back to.
    """
    pointer = directory / LATEST
    fallback = newest_checkpoint(directory)
    if not pointer.exists() and not pointer.is_symlink():
        return fallback
    try:
        if pointer.is_symlink() or not pointer.is_file():
            raise ValueError("it is not a plain file")
        name = pointer.read_text(encoding="utf-8").strip()
    except (OSError, ValueError) as error:
        name, problem = "", f"is unreadable ({error})"
    else:
        problem = _pointer_problem(directory, name)
    if not problem:
        return directory / name
    if fallback is not None:
        warnings.warn(
            f"{pointer} {problem}; resuming from the newest complete checkpoint {fallback.name}",
            stacklevel=2,
        )
        return fallback
    raise CheckpointError(
        f"{pointer} {problem}, and no complete checkpoint is left in {directory};"
        " a checkpoint pointer names a step directory step-NNNNNNNN next to it"
    )


def _pointer_problem(directory: Path, name: str) -> str:
    """Why ``latest`` holding ``name`` cannot be followed ("" when it can)."""
    if not name:
        return "is empty"
    if "/" in name or "\\" in name or os.path.isabs(name) or name in {".", ".."}:
        return f"names {name!r}, a path: it may only name a step directory inside the run"
    if not STEP_NAME.fullmatch(name):
        return f"names {name!r}, not a step directory step-NNNNNNNN"
    path = directory / name
    if path.is_symlink():
        return f"names {name!r}, a symlink: checkpoints never point out of their run"
    if _complete(directory, name) is None:
        return f"names {name!r}, which is missing or incomplete"
    return ""


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
    except pickle.UnpicklingError as error:
        raise CheckpointError(_refused(path / STATE, error)) from None
    except Exception as error:
        raise CheckpointError(
            f"checkpoint state {path / STATE} is unreadable: {type(error).__name__}: {error}"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint state {path / STATE} is not a dict")
    return tensors, state


def _refused(path: Path, error: pickle.UnpicklingError) -> str:
    """The message for a state file the safe loader rejected, without torch's advice."""
    text = str(error)
    _, marker, rest = text.partition("WeightsUnpickler error:")
    lines = [line.strip() for line in rest.splitlines() if line.strip()] if marker else []
    detail = lines[0].split(". ")[0].rstrip(".") if lines else text.splitlines()[0]
    if "Unsupported global" not in detail:
        return f"checkpoint state {path} is unreadable: not a valid state file ({detail})"
    return (
        f"checkpoint state {path} was refused: unsafe pickle content, it holds objects other"
        f" than tensors and plain containers ({detail}); flow loads only tensors and plain"
        " data, so this file cannot be resumed from"
    )
