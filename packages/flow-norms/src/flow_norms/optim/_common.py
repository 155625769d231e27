"""Argument checks and the gathering of parameters with gradients, shared by AdamP and SGDP."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, TypeAlias

import torch

from flow_core.errors import ConfigError

__all__ = ["Tensors", "check_range", "gradients", "partition_by_step"]

Tensors: TypeAlias = tuple[torch.Tensor, ...] | list[torch.Tensor]
"""What ``torch._foreach_*`` operations take and return."""


def check_range(name: str, value: float, low: float, high: float, high_open: bool) -> None:
    """Raise :class:`ConfigError` unless low <= value < high (or <= high when closed)."""
    ok = low <= value < high if high_open else low <= value <= high
    if not ok:
        bracket = ")" if high_open else "]"
        raise ConfigError(f"{name} must be in [{low}, {high}{bracket}, got {value!r}")


def gradients(params: list[torch.Tensor]) -> list[torch.Tensor]:
    """The gradients of ``params`` (which :func:`partition_by_step` guarantees exist)."""
    return [p.grad for p in params if p.grad is not None]


def partition_by_step(
    params: list[torch.Tensor], state: Any, buffers: tuple[str, ...]
) -> dict[int, list[torch.Tensor]]:
    """Parameters that have gradients, grouped by their step count (all equal in practice),
    with lazily created zero ``buffers`` and a per-parameter ``step``."""
    groups: dict[int, list[torch.Tensor]] = defaultdict(list)
    for p in params:
        if p.grad is None:
            continue
        if p.grad.is_sparse:
            raise ConfigError("AdamP and SGDP do not support sparse gradients")
        s = state[p]
        if len(s) == 0:
            s["step"] = 0
            for key in buffers:
                s[key] = torch.zeros_like(p, memory_format=torch.preserve_format)
        groups[int(s["step"])].append(p)
    return groups
