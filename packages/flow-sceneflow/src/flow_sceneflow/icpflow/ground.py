"""Ground removal for ICP-Flow (Lin & Caesar 2024, §3.1).

``height``: a point is ground when z ≤ z_ground + slack (the reference's ``range_z +
ground_slack`` with slack 0.3 m). z_ground is given, or estimated as the mode of the height
histogram (5 cm bins) of the lower half of the scan: on a LiDAR scan the ground is the most
populated height. ``plane``: open3d RANSAC plane segmentation; ground is everything within
``slack`` of the plane (or below it).
"""

from __future__ import annotations

import numpy as np

from flow_core.errors import ConfigError

__all__ = ["GROUND_METHODS", "estimate_ground_height", "ground_mask"]

GROUND_METHODS = ("height", "plane", "none")


def estimate_ground_height(points: np.ndarray, bin_size: float = 0.05) -> float:
    """The most common height among the lower half of the points."""
    heights = np.sort(points[:, 2])[: max(1, points.shape[0] // 2)]
    edges = np.arange(heights[0], heights[-1] + 2 * bin_size, bin_size)
    counts, edges = np.histogram(heights, bins=edges)
    peak = int(np.argmax(counts))
    return float((edges[peak] + edges[peak + 1]) / 2)


def ground_mask(
    points: np.ndarray,
    method: str = "height",
    slack: float = 0.3,
    ground_z: float | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Boolean mask of the ground points of ``points`` ``(N, 3)``."""
    if method not in GROUND_METHODS:
        raise ConfigError(f"unknown ground method {method!r}; expected one of {GROUND_METHODS}")
    if method == "none":
        return np.zeros(points.shape[0], dtype=bool)
    if method == "height":
        level = estimate_ground_height(points) if ground_z is None else ground_z
        return points[:, 2] <= level + slack
    import open3d as o3d

    o3d.utility.random.seed(seed)
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    plane, _ = cloud.segment_plane(distance_threshold=0.1, ransac_n=3, num_iterations=200)
    normal = np.asarray(plane[:3])
    offset = float(plane[3])
    if normal[2] < 0:
        normal, offset = -normal, -offset
    below: np.ndarray = points @ normal + offset <= slack
    return below
