"""Ego-motion between two scans by whole-scan point-to-point ICP (coarse to fine).

Used where a pair is neither ego-compensated nor carries poses. Both clouds are voxel-averaged
(``voxel`` m) and registered with open3d's point-to-point ICP (Besl & McKay 1992) at shrinking
correspondence radii (2, 1, 0.5, 0.25 m), starting from the identity. Moving objects are a
minority of a LiDAR scan, so the static scene dominates the fit; ICP-Flow (Lin & Caesar 2024,
arXiv 2402.17351) uses KISS-ICP for the same purpose.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["estimate_ego", "motion_size"]

RADII = (2.0, 1.0, 0.5, 0.25)


def _cloud(points: np.ndarray, voxel: float) -> Any:
    import open3d as o3d

    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points, np.float64)))
    return cloud.voxel_down_sample(voxel)


def estimate_ego(pc1: np.ndarray, pc2: np.ndarray, voxel: float = 0.2) -> np.ndarray:
    """The 4×4 transform taking scan-2 coordinates into scan-1 coordinates."""
    import open3d as o3d

    registration = o3d.pipelines.registration
    source, target = _cloud(pc2, voxel), _cloud(pc1, voxel)
    current = np.eye(4)
    for radius in RADII:
        current = np.array(
            registration.registration_icp(
                source,
                target,
                radius,
                current,
                registration.TransformationEstimationPointToPoint(),
                registration.ICPConvergenceCriteria(1e-7, 1e-7, 50),
            ).transformation
        )
    return current


def motion_size(transform: np.ndarray) -> tuple[float, float]:
    """Translation (m) and rotation angle (degrees) of a 4×4 rigid transform."""
    cosine = np.clip((np.trace(transform[:3, :3]) - 1.0) / 2.0, -1.0, 1.0)
    return float(np.linalg.norm(transform[:3, 3])), float(np.degrees(np.arccos(cosine)))
