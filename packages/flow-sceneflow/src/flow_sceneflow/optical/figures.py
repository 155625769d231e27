"""The task's figure: the frames, the ground truth and every method's flow for one pair."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from flow_sceneflow.optical.data import OpticalPair
from flow_sceneflow.optical.encodings import flow_to_hsv_rgb

__all__ = ["plot_pair"]


def plot_pair(
    path: Path,
    pair: OpticalPair,
    flows: dict[str, NDArray[np.float64]],
    extra: Mapping[str, NDArray[np.uint8] | NDArray[np.float64]],
) -> None:
    """Save a grid: frame 0, frame 1, ground truth (if any), each flow in HSV with one colour
    scale, then ``extra`` panels (e.g. the ReynoldsFlow+ RGB image, |v_r|)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reference = pair.truth if pair.truth is not None else next(iter(flows.values()), None)
    scale = float(np.nanmax(np.linalg.norm(reference, axis=2))) if reference is not None else 1.0
    panels: list[tuple[str, NDArray[np.generic], str | None]] = [
        ("frame 0", pair.image0, "gray"),
        ("frame 1", pair.image1, "gray"),
    ]
    if pair.truth is not None:
        panels.append(("ground truth", flow_to_hsv_rgb(pair.truth, scale or 1.0), None))
    panels += [(name, flow_to_hsv_rgb(flow, scale or 1.0), None) for name, flow in flows.items()]
    panels += [(name, image, None if image.ndim == 3 else "magma") for name, image in extra.items()]
    columns = min(4, len(panels))
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3.0 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (title, image, cmap) in zip(axes.ravel(), panels, strict=False):
        ax.imshow(
            image, cmap=cmap, vmin=0 if cmap == "gray" else None, vmax=1 if cmap == "gray" else None
        )
        ax.set_title(title, fontsize=9)
    fig.suptitle(
        f"{pair.name}: HSV flow, hue = direction, value = |flow| / {scale:.1f} px", fontsize=10
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
