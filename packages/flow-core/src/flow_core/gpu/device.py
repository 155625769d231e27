"""Device selection and seeding.

``resolve_device`` turns the ``--device`` flag into a :class:`torch.device`, failing early with a
one-line message when the request cannot be met on this machine. Under ``torchrun`` each process
takes the GPU given by ``LOCAL_RANK``, as in nanoGPT.
"""

from __future__ import annotations

import os
import random
import re

import numpy as np
import torch

from flow_core.errors import DeviceError, UsageError

__all__ = ["resolve_device", "seed_everything"]

_ACCEPTED = "auto, cpu, cuda, cuda:N, mps"

_CUDA_INDEX = re.compile(r"cuda:(\d+)")


def _available() -> str:
    """Comma-separated devices this process can use, e.g. ``"cpu, cuda:0, cuda:1"``."""
    names = ["cpu"]
    if torch.cuda.is_available():
        names += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        names.append("mps")
    return ", ".join(names)


def _unavailable(spec: str, reason: str) -> DeviceError:
    """The error for a well-formed request this machine cannot meet."""
    return DeviceError(
        f"device {spec!r} is not available: {reason} "
        f"(available here: {_available()}; accepted forms: {_ACCEPTED})"
    )


def _cuda(spec: str, index: int) -> torch.device:
    """``cuda:index`` if that GPU exists, else a :class:`DeviceError`."""
    if not torch.cuda.is_available():
        raise _unavailable(spec, "CUDA is not available")
    count = torch.cuda.device_count()
    if index >= count:
        raise _unavailable(spec, f"cuda:{index} asked for, but this machine has {count} GPU(s)")
    return torch.device("cuda", index)


def _local_rank() -> int:
    """The ``LOCAL_RANK`` torchrun sets (0 outside torchrun)."""
    value = os.environ.get("LOCAL_RANK", "0")
    if not value.isdigit():
        raise UsageError(f"environment variable LOCAL_RANK={value!r} is not a non-negative integer")
    return int(value)


def resolve_device(spec: str = "auto") -> torch.device:
    """Return the device named by ``spec``: one of ``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``.

    ``auto`` picks CUDA if present, else MPS, else the CPU. ``auto`` and a bare ``cuda`` mean "this
    process's GPU": ``cuda:LOCAL_RANK`` under torchrun, ``cuda:0`` otherwise. ``cuda:N`` is taken
    as given. A malformed spec or a device this machine lacks raises :class:`DeviceError`.
    """
    name = spec.strip().lower()
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        if not torch.backends.mps.is_available():
            raise _unavailable(spec, "MPS is not available")
        return torch.device("mps")
    if name in ("auto", "cuda"):
        if name == "cuda" or torch.cuda.is_available():
            return _cuda(spec, _local_rank())
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    match = _CUDA_INDEX.fullmatch(name)
    if match is None:
        raise DeviceError(f"unknown device {spec!r}; accepted forms: {_ACCEPTED}")
    return _cuda(spec, int(match.group(1)))


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch on every device.

    Under DDP pass ``seed + rank`` where ranks must draw different data or noise.
    """
    if isinstance(seed, bool) or not 0 <= seed < 2**32:
        raise UsageError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
