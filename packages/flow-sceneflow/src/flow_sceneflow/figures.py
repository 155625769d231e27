"""Top-down figures of scene flow: points coloured by their motion beyond the ego-motion."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from flow_sceneflow.scan import ScanPair, transform_points

__all__ = ["top_down"]


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
