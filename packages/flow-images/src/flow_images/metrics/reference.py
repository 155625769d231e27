"""Full-reference image metrics, where a ground-truth image exists: PSNR and SSIM.

Both come from ``skimage.metrics`` with the project's range [−1, 1] (``data_range = 2``):
PSNR = 10 log₁₀(2² / MSE) (∞ for identical images), and SSIM of Wang et al. (2004) with
scikit-image's defaults (7×7 uniform window, K₁ = 0.01, K₂ = 0.03), averaged over channels.
Batches ``(N, C, H, W)`` give the mean over the N images; a single ``(C, H, W)`` image is
accepted too.
"""

from __future__ import annotations

import math

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torch import Tensor

from flow_core.errors import FlowError
from flow_images.metrics._checks import check_images

__all__ = ["psnr", "ssim"]

DATA_RANGE = 2.0
SSIM_WINDOW = 7


def _pairs(name: str, a: Tensor, b: Tensor) -> tuple[np.ndarray, np.ndarray]:
    a = a.unsqueeze(0) if a.ndim == 3 else a
    b = b.unsqueeze(0) if b.ndim == 3 else b
    if tuple(a.shape) != tuple(b.shape):
        raise FlowError(
            f"{name}: images must have equal shapes, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    check_images(name, a)
    check_images(name, b)
    return a.detach().cpu().double().numpy(), b.detach().cpu().double().numpy()


def psnr(a: Tensor, b: Tensor) -> float:
    """Mean PSNR in dB between image batches in [−1, 1] (∞ if every pair is identical)."""
    x, y = _pairs("psnr", a, b)
    values = [
        math.inf
        if np.array_equal(u, v)
        else float(peak_signal_noise_ratio(u, v, data_range=DATA_RANGE))  # type: ignore[no-untyped-call]
        for u, v in zip(x, y, strict=True)
    ]
    return float(np.mean(values))


def ssim(a: Tensor, b: Tensor) -> float:
    """Mean SSIM between image batches in [−1, 1] (images of at least 7×7 pixels)."""
    x, y = _pairs("ssim", a, b)
    if min(x.shape[2:]) < SSIM_WINDOW:
        raise FlowError(
            f"ssim: images need at least {SSIM_WINDOW}×{SSIM_WINDOW} pixels, got {x.shape[2:]}"
        )
    values = [
        float(structural_similarity(u, v, data_range=DATA_RANGE, channel_axis=0))  # type: ignore[no-untyped-call]
        for u, v in zip(x, y, strict=True)
    ]
    return float(np.mean(values))
