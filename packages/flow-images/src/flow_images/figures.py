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

__all__ = ["save_image_grid", "save_quality_curves"]


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
