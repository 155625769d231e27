"""Batched point-to-point ICP in torch, and open3d's ICP as an option and a check.

Besl & McKay (1992), "A method for registration of 3-D shapes": alternate (1) nearest-neighbour
correspondences q_i = argmin_q ‖T p_i − q‖ and (2) the weighted Kabsch fit of T to the pairs
whose distance is below the inlier radius (:func:`flow_sceneflow.registration.kabsch.kabsch`).
Many clusters are registered at once: sources and targets are padded to ``(B, N, 3)`` with
validity masks. Iteration stops for all elements when every element's inlier RMSE changed by
less than ``tolerance`` (relative) or after ``max_iterations``; as in ICP-Flow, an element whose
final mean nearest-neighbour error is above its initial one keeps the initial transform.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from flow_sceneflow.registration.kabsch import kabsch

__all__ = ["IcpResult", "batched_icp", "nearest", "open3d_icp", "transform"]

FAR = 1.0e6


@dataclass
class IcpResult:
    """Transforms ``(B, 4, 4)`` (float64), final and initial mean NN errors, iterations run."""

    transforms: torch.Tensor
    errors: torch.Tensor
    initial_errors: torch.Tensor
    iterations: int


def transform(transforms: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Apply ``(B, 4, 4)`` transforms to ``(B, N, 3)`` points."""
    t = transforms.to(points.dtype)
    return torch.einsum("bij,bnj->bni", t[:, :3, :3], points) + t[:, None, :3, 3]


def nearest(
    query: torch.Tensor, reference: torch.Tensor, reference_mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Distance and index of each query point's nearest valid reference point (batched).

    Both sets are first centred on the reference centroid, so that the matrix-product form of
    ``torch.cdist`` keeps its float32 precision far from the origin; padding points are then
    moved ``FAR`` m away rather than masked in the distance matrix (O(M) instead of O(NM)).
    """
    mask = (
        torch.ones(reference.shape[:2], dtype=torch.bool, device=reference.device)
        if reference_mask is None
        else reference_mask
    )
    weights = mask[..., None].to(reference.dtype)
    centre = (reference * weights).sum(1, keepdim=True) / weights.sum(1, keepdim=True).clamp_min(1)
    reference = torch.where(mask[..., None], reference - centre, FAR)
    best, index = torch.cdist(query - centre, reference).min(dim=2)
    return best, index


def _mean_error(distance: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    finite = torch.where(mask, distance, torch.zeros_like(distance))
    return finite.sum(1) / mask.sum(1).clamp_min(1)


def batched_icp(
    source: torch.Tensor,
    target: torch.Tensor,
    init: torch.Tensor | None = None,
    source_mask: torch.Tensor | None = None,
    target_mask: torch.Tensor | None = None,
    inlier: float = 0.1,
    max_iterations: int = 100,
    tolerance: float = 1e-6,
) -> IcpResult:
    """Register each ``source[b]`` onto ``target[b]`` (``(B, N, 3)``, ``(B, M, 3)``).

    ``init`` ``(B, 4, 4)`` is the starting transform (identity by default); masks mark the real
    (non-padding) points. Returns :class:`IcpResult`.
    """
    batch = source.shape[0]
    dtype, device = source.dtype, source.device
    src_mask = (
        torch.ones(source.shape[:2], dtype=torch.bool, device=device)
        if source_mask is None
        else source_mask
    )
    dst_mask = (
        torch.ones(target.shape[:2], dtype=torch.bool, device=device)
        if target_mask is None
        else target_mask
    )
    current = (
        torch.eye(4, dtype=torch.float64, device=device).repeat(batch, 1, 1)
        if init is None
        else init.to(torch.float64).clone()
    )
    start = current.clone()
    distance, _ = nearest(transform(current, source), target, dst_mask)
    initial_errors = _mean_error(distance, src_mask)
    previous = torch.full((batch,), float("inf"), dtype=torch.float64, device=device)
    active = torch.ones(batch, dtype=torch.bool, device=device)
    iterations = 0
    for step in range(1, max_iterations + 1):
        rows = torch.nonzero(active).squeeze(1)
        if rows.numel() == 0:
            break
        iterations = step
        moved = transform(current[rows], source[rows])
        distance, index = nearest(moved, target[rows], dst_mask[rows])
        matched = torch.gather(target[rows], 1, index[..., None].expand(-1, -1, 3))
        weights = (src_mask[rows] & (distance < inlier)).to(dtype)
        count = weights.sum(1)
        rmse = torch.sqrt((weights * distance**2).sum(1) / count.clamp_min(1)).double()
        enough = count >= 3
        update = kabsch(source[rows], matched, weights)
        current[rows] = torch.where(enough[:, None, None], update, current[rows])
        change = (previous[rows] - rmse).abs() / rmse.clamp_min(1e-12)
        previous[rows] = rmse
        active[rows] = enough & ~(change < tolerance)
    distance, _ = nearest(transform(current, source), target, dst_mask)
    errors = _mean_error(distance, src_mask)
    worse = errors > initial_errors
    current = torch.where(worse[:, None, None], start, current)
    errors = torch.where(worse, initial_errors, errors)
    return IcpResult(current, errors.double(), initial_errors.double(), iterations)


def open3d_icp(
    source: np.ndarray,
    target: np.ndarray,
    init: np.ndarray | None = None,
    inlier: float = 0.1,
    max_iterations: int = 100,
    tolerance: float = 1e-6,
) -> np.ndarray:
    """open3d's point-to-point ICP with the same settings; returns the 4×4 transform."""
    import open3d as o3d

    def cloud(points: np.ndarray) -> Any:
        pcd = o3d.geometry.PointCloud()
        pcd.points = o3d.utility.Vector3dVector(np.asarray(points, dtype=np.float64))
        return pcd

    result = o3d.pipelines.registration.registration_icp(
        cloud(source),
        cloud(target),
        inlier,
        np.eye(4) if init is None else np.asarray(init, dtype=np.float64),
        o3d.pipelines.registration.TransformationEstimationPointToPoint(),
        o3d.pipelines.registration.ICPConvergenceCriteria(tolerance, tolerance, max_iterations),
    )
    return np.array(result.transformation, dtype=np.float64)
