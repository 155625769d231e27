"""Ground removal for ICP-Flow (Lin & Caesar 2024, §3.1).

``height``: a point is ground when z ≤ z_ground + slack (the reference's ``range_z +
ground_slack`` with slack 0.3 m). z_ground is given, or estimated as the mode of the height
histogram (5 cm bins) of the lower half of the scan: on a LiDAR scan the ground is the most
populated height. ``plane``: open3d RANSAC plane segmentation; ground is everything within
``slack`` of the plane (or below it). ``none``: nothing is ground (for ground-free files).

``local`` (the default of the task's ``auto`` on clouds with ground): a patchwork-style local
estimate (after Lim et al. 2021, "Patchwork", arXiv 2108.05560). The xy plane is cut into
``cell`` m squares; in each, the seeds are the points within ``seed_band`` m of the cell's lowest
point, and a plane z = a x + b y + c is fitted to them by least squares. The fit is kept when it
is nearly level (normal within 15° of vertical) and within 1 m of the global ground height;
otherwise the cell uses the global height. Ground is every point at most ``band`` (0.15 m) above
its cell's plane. The band is half the reference's 0.3 m slack, so that low objects (kerb-high
boxes, children, the lower body of cars) keep most of their points. Failure modes: a cell
entirely covered by one object bigger than the cell (a bus, a wall) takes the global height; on
steep slopes beyond 15° the global height is used and the slope is cut at one level.
"""

from __future__ import annotations

import numpy as np

from flow_core.errors import ConfigError

__all__ = ["GROUND_METHODS", "estimate_ground_height", "ground_mask", "local_ground_mask"]

GROUND_METHODS = ("local", "height", "plane", "none")


def estimate_ground_height(points: np.ndarray, bin_size: float = 0.05) -> float:
    """The most common height among the lower half of the points."""
    heights = np.sort(points[:, 2])[: max(1, points.shape[0] // 2)]
    edges = np.arange(heights[0], heights[-1] + 2 * bin_size, bin_size)
    counts, edges = np.histogram(heights, bins=edges)
    peak = int(np.argmax(counts))
    return float((edges[peak] + edges[peak + 1]) / 2)


def local_ground_mask(
    points: np.ndarray, cell: float = 4.0, band: float = 0.15, seed_band: float = 0.2
) -> np.ndarray:
    """Ground points by per-cell plane fits (see the module docstring)."""
    level = estimate_ground_height(points)
    keys = np.floor(points[:, :2] / cell).astype(np.int64)
    _, cell_of = np.unique(keys, axis=0, return_inverse=True)
    cell_of = cell_of.reshape(-1)
    height = np.full(points.shape[0], level)
    order = np.argsort(cell_of, kind="stable")
    bounds = np.flatnonzero(np.diff(cell_of[order])) + 1
    for members in np.split(order, bounds):
        z = points[members, 2]
        seeds = members[z <= z.min() + seed_band]
        if seeds.size < 3:
            continue
        design = np.column_stack([points[seeds, :2], np.ones(seeds.size)])
        (a, b, c), *_ = np.linalg.lstsq(design, points[seeds, 2], rcond=None)
        tilt = np.degrees(np.arctan(np.hypot(a, b)))
        plane = points[members, :2] @ np.array([a, b]) + c
        if tilt <= 15.0 and abs(float(np.median(plane)) - level) <= 1.0:
            height[members] = plane
    mask: np.ndarray = points[:, 2] <= height + band
    return mask


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
    if method == "local":
        return local_ground_mask(points)
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
