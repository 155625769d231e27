"""GPU and training plumbing: devices, mixed precision, EMA, ``torch.compile`` and DDP.

Small functions a training loop calls, not a trainer. Everything works, and is tested, on the
CPU; CUDA and MPS are used when asked for (``resolve_device``) and available.
"""

from flow_core.gpu.amp import PRECISIONS, autocast, make_grad_scaler
from flow_core.gpu.compile import maybe_compile
from flow_core.gpu.device import resolve_device, seed_everything
from flow_core.gpu.distributed import (
    DistInfo,
    all_gather_object,
    all_reduce_mean,
    barrier,
    broadcast_object,
    cleanup,
    dist_info,
    init_distributed,
    is_main,
    no_sync,
    replica_divergence,
    unwrap,
    wrap_ddp,
)
from flow_core.gpu.ema import EMA

__all__ = [
    "EMA",
    "PRECISIONS",
    "DistInfo",
    "all_gather_object",
    "all_reduce_mean",
    "autocast",
    "barrier",
    "broadcast_object",
    "cleanup",
    "dist_info",
    "init_distributed",
    "is_main",
    "make_grad_scaler",
    "maybe_compile",
    "no_sync",
    "replica_divergence",
    "resolve_device",
    "seed_everything",
    "unwrap",
    "wrap_ddp",
]
