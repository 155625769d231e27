"""The figures of the package's tasks.

* :func:`top_down` — LiDAR scene flow seen from above: points coloured by their motion beyond
  the ego-motion;
* :func:`plot_pair` — optical flow: the frames, the ground truth and every method's flow for
  one image pair.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from flow_sceneflow.data.optical import OpticalPair
from flow_sceneflow.optical.encodings import flow_to_hsv_rgb
from flow_sceneflow.scan import ScanPair, transform_points

__all__ = ["plot_pair", "top_down"]


def top_down(
    path: Path, pair: ScanPair, flows: list[tuple[str, np.ndarray]], extent: float = 30.0
) -> None:
    """One panel per ``(title, flow)``: scan-1 points within ``extent`` m seen from above,
    coloured by |flow − ego flow| (m), with arrows on the points moving by more than 5 cm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ego_flow = transform_points(np.linalg.inv(pair.ego), pair.pc1) - pair.pc1
    near = (np.abs(pair.pc1[:, :2]) < extent).all(1)
    points = pair.pc1[near]
    fig, axes = plt.subplots(
        1, len(flows), figsize=(4.2 * len(flows) + 1, 4.4), squeeze=False, layout="constrained"
    )
    scale = max(
        (
            float(np.percentile(np.linalg.norm(f[near] - ego_flow[near], axis=1), 99.5))
            for _, f in flows
        ),
        default=1.0,
    )
    for ax, (title, flow) in zip(axes[0], flows, strict=True):
        motion = flow[near] - ego_flow[near]
        magnitude = np.linalg.norm(motion, axis=1)
        image = ax.scatter(
            points[:, 0],
            points[:, 1],
            c=magnitude,
            s=0.3,
            cmap="viridis",
            vmin=0,
            vmax=max(scale, 0.1),
        )
        moving = np.flatnonzero(magnitude > 0.05)[::5]
        ax.quiver(
            points[moving, 0],
            points[moving, 1],
            motion[moving, 0],
            motion[moving, 1],
            angles="xy",
            scale_units="xy",
            scale=1.0,
            width=0.002,
            color="red",
        )
        ax.set_title(title)
        ax.set_xlim(-extent, extent)
        ax.set_ylim(-extent, extent)
        ax.set_aspect("equal")
        ax.set_xlabel("x (m)")
        ax.set_ylabel("y (m)")
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label="|flow - ego flow| (m)")
    fig.savefig(path, dpi=110)
    plt.close(fig)


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
