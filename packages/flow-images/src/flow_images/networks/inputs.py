"""Checks of the arguments and inputs shared by the image networks.

Images are NCHW tensors (B, C, S, S). Times may come as a scalar tensor (one time for the whole
batch, as adaptive ODE solvers produce), as ``(B,)`` (what flow-core's samplers and objectives
pass) or as ``(B, 1, …, 1)``; they are brought to shape ``(B,)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from flow_core.errors import ConfigError, FlowError

__all__ = ["batch_times", "check_common", "image_batch"]


def check_common(
    kind: str, in_channels: int, image_size: int, num_classes: int, max_frequency: float
) -> None:
    """Validate the arguments every image network shares; raise :class:`ConfigError`."""
    for name, value in (("in_channels", in_channels), ("image_size", image_size)):
        if value < 1:
            raise ConfigError(f"{kind}: {name} must be >= 1, got {value}")
    if num_classes < 0:
        raise ConfigError(
            f"{kind}: num_classes must be >= 0 (0 = unconditional), got {num_classes}"
        )
    if not max_frequency >= 1.0:
        raise ConfigError(f"{kind}: max_frequency must be >= 1, got {max_frequency}")


def batch_times(kind: str, name: str, t: Tensor, batch: int, dtype: torch.dtype) -> Tensor:
    """Times of shape ``(batch,)`` from a scalar, a ``(B,)`` tensor or ``(B, 1, …, 1)``.

    A tensor with a single element is broadcast to the whole batch.

    Raises:
        FlowError: ``t`` is not a tensor or holds neither one time nor one per sample.
    """
    if not isinstance(t, Tensor):
        raise FlowError(f"{kind}: {name} must be a tensor, got {type(t).__name__}")
    if t.numel() == 1:
        return t.reshape(1).to(dtype).expand(batch)
    if t.ndim >= 1 and t.shape[0] == batch and t.numel() == batch:
        return t.reshape(batch).to(dtype)
    raise FlowError(
        f"{kind}: {name} must be a scalar or have shape ({batch},) or ({batch}, 1, ...), "
        f"got {tuple(t.shape)}"
    )


def image_batch(kind: str, x: Tensor, in_channels: int, image_size: int) -> int:
    """The batch size of ``x``; raise :class:`FlowError` unless it is ``(B, C, S, S)``."""
    expected = (in_channels, image_size, image_size)
    if x.ndim != 4 or tuple(x.shape[1:]) != expected:
        raise FlowError(
            f"{kind}: x must have shape (B, {', '.join(map(str, expected))}), got {tuple(x.shape)}"
        )
    return int(x.shape[0])
