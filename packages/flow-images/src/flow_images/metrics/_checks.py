"""Input checks shared by the image metrics."""

from __future__ import annotations

import torch
from torch import Tensor

from flow_core.errors import FlowError


def check_features(name: str, a: Tensor, b: Tensor, min_size: int) -> None:
    """``a`` and ``b`` are finite ``(n, D)`` and ``(m, D)`` matrices with n, m ≥ ``min_size``."""
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise FlowError(
            f"{name}: features must have shapes (n, D) and (m, D), "
            f"got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if min(a.shape[0], b.shape[0]) < min_size:
        raise FlowError(
            f"{name}: each set needs at least {min_size} rows, got {a.shape[0]} and {b.shape[0]}"
        )
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        raise FlowError(f"{name}: features contain NaN or infinite values")


def check_images(name: str, images: Tensor, shape: tuple[int, ...] | None = None) -> None:
    """``images`` is a finite ``(N, C, H, W)`` batch, of per-image ``shape`` when given."""
    if images.ndim != 4:
        raise FlowError(f"{name}: images must be (N, C, H, W), got shape {tuple(images.shape)}")
    if shape is not None and tuple(images.shape[1:]) != shape:
        raise FlowError(
            f"{name}: images must be (N, {', '.join(map(str, shape))}), got {tuple(images.shape)}"
        )
    if images.shape[0] == 0:
        raise FlowError(f"{name}: no images")
    if not torch.isfinite(images).all():
        raise FlowError(f"{name}: images contain NaN or infinite values")
