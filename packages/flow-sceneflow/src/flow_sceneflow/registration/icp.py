"""Batched point-to-point ICP in torch, and open3d's ICP as an option and a check.

Besl & McKay (1992), "A method for registration of 3-D shapes": alternate (1) nearest-neighbour
correspondences q_i = argmin_q ‖T p_i − q‖ and (2) the weighted Kabsch fit of T to the pairs
whose distance is below the inlier radius (:func:`flow_sceneflow.registration.kabsch.kabsch`).
Many clusters are registered at once: sources and targets are padded to ``(B, N, 3)`` with
validity masks. Iteration stops for all elements when every element's inlier RMSE changed by
less than ``tolerance`` (relative) or after ``max_iterations``; as in ICP-Flow, an element whose
final mean nearest-neighbour error is above its initial one keeps the initial transform.

:func:`kdtree_icp` is the CPU path: correspondences from one scipy ``cKDTree`` over all
targets (O(N log M) per iteration instead of the O(NM) distance matrix) and a batched numpy
Kabsch, with the same inlier rule and stopping rule. The batched torch path is for GPUs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from flow_sceneflow.registration.kabsch import kabsch

__all__ = ["IcpResult", "batched_icp", "kdtree_icp", "nearest", "open3d_icp", "transform"]

FAR = 1.0e6
SPACING = 1.0e5


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


def _tensor(array: np.ndarray) -> Any:
    """An open3d tensor holding a float64 copy of ``array``."""
    import open3d as o3d

    return o3d.core.Tensor.from_numpy(np.ascontiguousarray(array, dtype=np.float64))


def _group_sums(values: np.ndarray, owner: np.ndarray, count: int) -> np.ndarray:
    """Row sums of ``values`` ``(N, K)`` per group; ``owner`` must be sorted (non-decreasing)."""
    sums = np.zeros((count, values.shape[1]))
    if owner.size:
        starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
        sums[owner[starts]] = np.add.reduceat(values, starts, axis=0)
    return sums


def _batched_kabsch(
    source: np.ndarray, target: np.ndarray, owner: np.ndarray, count: int
) -> tuple[np.ndarray, np.ndarray]:
    """Kabsch for ``count`` groups of correspondences at once (``owner``: sorted group ids).

    Returns the transforms ``(count, 4, 4)`` and whether each group had at least 3 rows.
    The covariance is Σ p qᵀ − n p̄ q̄ᵀ, summed per group in one pass.
    """
    n = np.bincount(owner, minlength=count).astype(np.float64)
    outer = (source[:, :, None] * target[:, None, :]).reshape(-1, 9)
    sums = _group_sums(np.hstack([source, target, outer]), owner, count)
    safe = np.maximum(n, 1.0)[:, None]
    p_mean, q_mean = sums[:, :3] / safe, sums[:, 3:6] / safe
    covariance = sums[:, 6:].reshape(count, 3, 3) - n[:, None, None] * (
        p_mean[:, :, None] * q_mean[:, None, :]
    )
    u, _, vh = np.linalg.svd(covariance)
    v = np.swapaxes(vh, 1, 2)
    sign = np.where(np.linalg.det(v @ np.swapaxes(u, 1, 2)) < 0, -1.0, 1.0)
    v[:, :, 2] *= sign[:, None]
    rotation = v @ np.swapaxes(u, 1, 2)
    transforms = np.tile(np.eye(4), (count, 1, 1))
    transforms[:, :3, :3] = rotation
    transforms[:, :3, 3] = q_mean - np.einsum("bij,bj->bi", rotation, p_mean)
    return transforms, n >= 3


def kdtree_icp(
    sources: list[np.ndarray],
    targets: list[np.ndarray],
    init: np.ndarray | None = None,
    inlier: float = 0.1,
    max_iterations: int = 100,
    tolerance: float = 1e-6,
) -> np.ndarray:
    """Point-to-point ICP of many pairs on a CPU; returns the transforms ``(B, 4, 4)``.

    All targets share one KD-tree index (open3d's ``NearestNeighborSearch``, a radius-bounded
    hybrid search; pair b shifted by b·``SPACING`` m along x, so no query can reach another
    pair's points), so each iteration is one tree query and one batched Kabsch for all pairs
    still running, whatever their number. A pair stops when its
    inlier set and inlier RMSE settle (same inlier count, RMSE change below ``tolerance`` m:
    open3d's convergence test) or it has fewer than 3 inliers;
    a pair whose final mean NN error exceeds its initial one keeps ``init``.
    """
    import open3d as o3d

    count = len(sources)
    start = np.tile(np.eye(4), (count, 1, 1)) if init is None else np.array(init, np.float64)
    shift = np.arange(count, dtype=np.float64) * SPACING
    target_all = np.concatenate(targets).astype(np.float64)
    target_owner = np.repeat(np.arange(count), [t.shape[0] for t in targets])
    tree = o3d.core.nns.NearestNeighborSearch(
        _tensor(target_all + np.c_[shift[target_owner], np.zeros((len(target_all), 2))])
    )
    tree.hybrid_index(inlier)
    tree.knn_index()
    source_all = np.concatenate(sources).astype(np.float64)
    owner = np.repeat(np.arange(count), [p.shape[0] for p in sources])
    current = start.copy()
    previous = np.full(count, np.inf)
    previous_hits = np.full(count, -1)
    active = np.ones(count, dtype=bool)

    def moved(transforms: np.ndarray, rows: np.ndarray) -> np.ndarray:
        placed = transforms[owner[rows]]
        points = source_all[rows]
        out: np.ndarray = placed[:, :3, 3] + placed[:, :3, 0] * points[:, :1]
        out += placed[:, :3, 1] * points[:, 1:2]
        out += placed[:, :3, 2] * points[:, 2:3]
        out[:, 0] += shift[owner[rows]]
        return out

    for _ in range(max_iterations):
        rows = np.flatnonzero(active[owner])
        if rows.size == 0:
            break
        found, squared, _ = tree.hybrid_search(_tensor(moved(current, rows)), inlier, 1)
        index = found.numpy()[:, 0]
        hit = index >= 0
        rows, distance, index = rows[hit], np.sqrt(squared.numpy()[hit, 0]), index[hit]
        update, enough = _batched_kabsch(source_all[rows], target_all[index], owner[rows], count)
        hits = np.bincount(owner[rows], minlength=count)
        rmse = np.sqrt(np.bincount(owner[rows], distance**2, count) / np.maximum(hits, 1))
        step = active & enough
        current[step] = update[step]
        settled = (np.abs(previous - rmse) < tolerance) & (hits == previous_hits)
        previous = np.where(step, rmse, previous)
        previous_hits = np.where(step, hits, previous_hits)
        active &= enough & ~settled

    every = np.arange(owner.size)

    def mean_error(transforms: np.ndarray) -> np.ndarray:
        squared = np.asarray(tree.knn_search(_tensor(moved(transforms, every)), 1)[1].numpy())
        error: np.ndarray = np.bincount(owner, np.sqrt(squared[:, 0]), count)
        return error / np.bincount(owner, minlength=count)

    worse = mean_error(current) > mean_error(start)
    current[worse] = start[worse]
    result: np.ndarray = current
    return result
