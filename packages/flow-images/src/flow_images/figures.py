"""Figures of the image tasks: sample grids and quality-against-NFE curves (PNG, no display)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from einops import rearrange
from PIL import Image
from torch import Tensor

__all__ = ["save_guidance_curve", "save_image_grid", "save_quality_curves"]


def save_image_grid(path: Path, images: Tensor, columns: int, pixel_scale: int = 1) -> None:
    """Tile ``images`` (N, C, H, W) in [−1, 1] into rows of ``columns`` and write a PNG.

    A one-pixel white gutter separates the tiles; ``pixel_scale`` enlarges each pixel (nearest
    neighbour), so 8×8 digits stay legible. A ragged last row is padded with gutter colour.
    """
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be (N, 1|3, H, W), got {tuple(images.shape)}")
    n, channels, height, width = images.shape
    rows = math.ceil(n / columns)
    pad = rows * columns - n
    pixels = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    if pad:
        pixels = torch.cat(
            [pixels, torch.full((pad, channels, height, width), 255, dtype=torch.uint8)]
        )
    pixels = torch.nn.functional.pad(pixels, (0, 1, 0, 1), value=255)
    grid = rearrange(pixels, "(r c) ch h w -> (r h) (c w) ch", r=rows, c=columns).numpy()
    grid = np.repeat(np.repeat(grid, pixel_scale, axis=0), pixel_scale, axis=1)
    mode = "L" if channels == 1 else "RGB"
    Image.fromarray(grid[..., 0] if channels == 1 else grid, mode=mode).save(path)


def save_quality_curves(
    path: Path,
    curves: Mapping[str, Sequence[tuple[float, float]]],
    ylabel: str,
    floor: float | None = None,
    log_y: bool = True,
) -> None:
    """Plot each named curve of (NFE, metric) points on a log-2 NFE axis; ``floor`` dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name, points in curves.items():
        xs, ys = zip(*sorted(points), strict=True)
        ax.plot(xs, ys, marker="o", label=name)
    if floor is not None:
        ax.axhline(floor, color="grey", linestyle="--", label="train vs test (floor)")
    ax.set_xscale("log", base=2)
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("function evaluations (NFE)")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def save_guidance_curve(
    path: Path, points: Sequence[tuple[float, float, float]], floor: float | None = None
) -> None:
    """FD (left axis, log) and class accuracy (right axis) against the guidance weight w,
    from ``(w, fd, accuracy)`` points; ``floor`` dashed on the FD axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    weights, fds, accuracies = zip(*sorted(points), strict=True)
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.plot(weights, fds, marker="o", color="tab:blue", label="FD")
    if floor is not None:
        ax.axhline(floor, color="grey", linestyle="--", label="train vs test (floor)")
    ax.set_yscale("log")
    ax.set_xlabel("guidance weight w (0 = conditional model)")
    ax.set_ylabel("Fréchet distance (feature net)", color="tab:blue")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    right = ax.twinx()
    right.plot(weights, accuracies, marker="s", color="tab:orange")
    right.set_ylabel("class accuracy of samples", color="tab:orange")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
