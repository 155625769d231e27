"""Mixed precision: autocast contexts and gradient scalers.

Autocast is used only on accelerators; on the CPU it is a ``nullcontext`` (CPU autocast is slow
and changes numerics, so CPU runs stay in fp32 and reproducible). A gradient scaler is needed only
for fp16 on CUDA; elsewhere it is returned disabled, so a training loop calls it unconditionally.
"""

from __future__ import annotations

import contextlib

import torch

from flow_core.errors import UsageError

__all__ = ["PRECISIONS", "autocast", "make_grad_scaler"]

PRECISIONS: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}
"""Accepted ``precision`` values and the autocast dtype each stands for."""


def _check(precision: str) -> None:
    """Raise :class:`UsageError` unless ``precision`` is one of :data:`PRECISIONS`."""
    if precision not in PRECISIONS:
        raise UsageError(
            f"unknown precision {precision!r}; accepted values: {', '.join(PRECISIONS)}"
        )


def autocast(
    device: torch.device, precision: str = "fp32"
) -> contextlib.AbstractContextManager[None]:
    """Context for the forward pass: ``torch.autocast`` in bf16/fp16 on an accelerator.

    fp32, or any precision on the CPU, gives ``contextlib.nullcontext()``.
    """
    _check(precision)
    if precision == "fp32" or device.type == "cpu":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=PRECISIONS[precision])


def make_grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """A ``GradScaler`` that is enabled only for fp16 on CUDA (a pass-through otherwise)."""
    _check(precision)
    enabled = precision == "fp16" and device.type == "cuda"
    return torch.amp.GradScaler(device.type, enabled=enabled)
