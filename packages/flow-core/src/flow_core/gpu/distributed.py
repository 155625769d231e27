"""Data-parallel plumbing for runs started by ``torchrun``.

torchrun sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` (plus ``MASTER_ADDR``/``MASTER_PORT``)
for each process. A training loop calls :func:`init_distributed` once, wraps its model with
:func:`wrap_ddp`, writes files only where :func:`is_main`, and calls :func:`cleanup` at the end.
Every helper is a no-op in a single-process run, so the same loop serves both. The backend is
gloo on the CPU and nccl on CUDA.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeVar, cast

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from flow_core.errors import UsageError

__all__ = [
    "DistInfo",
    "all_gather_object",
    "all_reduce_mean",
    "barrier",
    "broadcast_object",
    "cleanup",
    "dist_info",
    "init_distributed",
    "is_main",
    "no_sync",
    "replica_divergence",
    "unwrap",
    "wrap_ddp",
]

T = TypeVar("T")


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in a (possibly single-process) run."""

    rank: int
    local_rank: int
    world_size: int

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that logs and writes files."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    """A non-negative integer from the environment, or ``default`` when unset."""
    value = os.environ.get(name)
    if value is None:
        return default
    if not value.isdigit():
        raise UsageError(f"environment variable {name}={value!r} is not a non-negative integer")
    return int(value)


def _initialized() -> bool:
    """True when the default process group exists."""
    return dist.is_available() and dist.is_initialized()


def _active() -> bool:
    """True when collectives have to run: a process group of more than one process."""
    return _initialized() and dist.get_world_size() > 1


def dist_info() -> DistInfo:
    """Rank, local rank and world size, from the process group if initialised, else torchrun's env.

    Without torchrun this is ``DistInfo(0, 0, 1)``. A process group started without torchrun
    (e.g. ``torch.multiprocessing.spawn``) has no ``LOCAL_RANK``; the rank is used (one node).
    """
    if _initialized():
        rank = dist.get_rank()
        return DistInfo(rank, _env_int("LOCAL_RANK", rank), dist.get_world_size())
    return DistInfo(_env_int("RANK", 0), _env_int("LOCAL_RANK", 0), _env_int("WORLD_SIZE", 1))


def init_distributed(device: torch.device) -> DistInfo:
    """Join the torchrun job when ``WORLD_SIZE > 1``; safe to call again, a no-op otherwise.

    ``device`` picks the backend (nccl for CUDA, gloo otherwise) and, on CUDA, becomes this
    process's current device; pass ``resolve_device(...)``, which gives ``cuda:LOCAL_RANK``.
    """
    info = dist_info()
    if info.world_size == 1 or _initialized():
        return info
    if not dist.is_available():
        raise UsageError(
            f"WORLD_SIZE={info.world_size} but this torch build has no torch.distributed"
        )
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return dist_info()


def cleanup() -> None:
    """Destroy the default process group, if any, once every rank has arrived.

    The barrier first matters: a rank that tears the group down (or exits) while another is
    still talking to it can abort that process ("terminate called without an active
    exception") with gloo. A garbage collection before it frees DDP wrappers caught in
    reference cycles, so that their pending work is released while the group still exists.
    """
    if _initialized():
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()


def is_main() -> bool:
    """True on rank 0 (and in a single-process run)."""
    return dist_info().is_main


def barrier() -> None:
    """Wait for every process; a no-op when not distributed."""
    if not _active():
        return
    if dist.get_backend() == "nccl":
        dist.barrier(device_ids=[torch.cuda.current_device()])
    else:
        dist.barrier()


def _wrappers(model: nn.Module) -> Iterator[nn.Module]:
    """``model``, then each module it wraps through DDP's ``.module`` or compile's ``_orig_mod``."""
    yield model
    while True:
        if isinstance(model, DistributedDataParallel):
            model = model.module
        elif isinstance(inner := getattr(model, "_orig_mod", None), nn.Module):
            model = inner
        else:
            return
        yield model


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module under any DDP and ``torch.compile`` wrappers (for saving, EMA, eval)."""
    *_, inner = _wrappers(model)
    return inner


def wrap_ddp(model: nn.Module, device: torch.device) -> nn.Module:
    """``DistributedDataParallel(model)`` when the world size is above one, else ``model``.

    ``model`` must already be on ``device``; DDP gets ``device_ids`` only on CUDA.
    """
    info = dist_info()
    if info.world_size == 1:
        return model
    if not _initialized():
        raise UsageError(
            f"WORLD_SIZE={info.world_size} but no process group: call init_distributed() first"
        )
    device_ids = [device] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def broadcast_object(obj: T, src: int = 0) -> T:
    """Rank ``src``'s ``obj`` (picklable) on every rank; ``obj`` itself when not distributed."""
    if not _active():
        return obj
    box: list[object] = [obj]
    dist.broadcast_object_list(box, src=src)
    return cast(T, box[0])


def all_gather_object(obj: T) -> list[T]:
    """Every rank's ``obj`` (picklable), in rank order; ``[obj]`` when not distributed."""
    if not _active():
        return [obj]
    gathered: list[object] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return [cast(T, item) for item in gathered]


def replica_divergence(model: nn.Module) -> float:
    """``max |θ_rank − mean over ranks θ|`` over all parameters and ranks; 0.0 when the
    replicas are identical (as DDP guarantees) or when not distributed."""
    if not _active():
        return 0.0
    flat = torch.cat([p.detach().reshape(-1).float() for p in unwrap(model).parameters()])
    mean = flat.clone()
    dist.all_reduce(mean, op=dist.ReduceOp.SUM)
    deviation = (flat - mean / dist.get_world_size()).abs().max()
    dist.all_reduce(deviation, op=dist.ReduceOp.MAX)
    return float(deviation)


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """The mean of ``tensor`` over ranks (e.g. a loss for logging); ``tensor`` when not distributed.

    The input is not modified, and the result does not track gradients when distributed.
    """
    if not _active():
        return tensor
    total = tensor.detach().clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total / dist.get_world_size()


def no_sync(model: nn.Module, enabled: bool) -> contextlib.AbstractContextManager[None]:
    """Skip DDP's gradient all-reduce inside the block when ``enabled`` (gradient accumulation).

    Use ``enabled=True`` on every micro-batch but the last. Without DDP this is a
    ``nullcontext``. ``model`` may be the DDP module or a ``torch.compile`` wrapper around it.
    """
    if enabled:
        for layer in _wrappers(model):
            if isinstance(layer, DistributedDataParallel):
                return layer.no_sync()
    return contextlib.nullcontext()
