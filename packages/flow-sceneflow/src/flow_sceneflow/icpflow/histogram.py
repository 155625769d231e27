"""Histogram-based translation initialisation (ICP-Flow §3.3).

Every displacement q_j − p_i between a source point and a target point of a cluster pair votes
into a 3-D histogram with bins of ``bin_size`` m spanning ±``extent`` in x and y and
±``z_extent`` in z (``torch.bincount`` over all pairs of a batch at once, the CPU port of the
reference's CUDA histogram). Points of a rigidly translated object agree on one displacement,
so the true translation is a peak. Max-pool non-maximum suppression (kernel ``nms_kernel``)
keeps the ``peaks`` strongest peaks; with the zero translation added, the candidate with the
lowest bidirectional mean nearest-neighbour distance wins (:func:`best_translation`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from flow_sceneflow.registration.icp import nearest

__all__ = ["best_translation", "translation_candidates"]


def translation_candidates(
    source: torch.Tensor,
    target: torch.Tensor,
    source_mask: torch.Tensor,
    target_mask: torch.Tensor,
    extent: float,
    bin_size: float = 0.1,
    z_extent: float = 0.1,
    peaks: int = 5,
    nms_kernel: int = 11,
) -> torch.Tensor:
    """Candidate translations ``(B, peaks + 1, 3)``: the histogram peaks, then zero.

    A batch element with fewer than ``peaks`` peaks repeats zero in the free slots.
    """
    batch = source.shape[0]
    size_xy = max(1, round(2 * extent / bin_size))
    size_z = max(1, round(2 * z_extent / bin_size))
    lower = torch.tensor([-extent, -extent, -z_extent], dtype=source.dtype, device=source.device)
    shape = torch.tensor([size_xy, size_xy, size_z], device=source.device)
    displacement = target[:, None, :, :] - source[:, :, None, :]  # (B, N, M, 3)
    cell = torch.floor((displacement - lower) / bin_size).long()
    valid = (source_mask[:, :, None] & target_mask[:, None, :]) & (
        (cell >= 0) & (cell < shape)
    ).all(-1)
    flat = (cell[..., 0] * size_xy + cell[..., 1]) * size_z + cell[..., 2]
    offset = torch.arange(batch, device=source.device)[:, None, None] * (size_xy * size_xy * size_z)
    votes = torch.bincount((flat + offset)[valid], minlength=batch * size_xy * size_xy * size_z)
    histogram = votes.view(batch, 1, size_xy, size_xy, size_z).to(source.dtype)
    pooled = F.max_pool3d(histogram, nms_kernel, stride=1, padding=nms_kernel // 2)
    suppressed = torch.where((histogram == pooled) & (histogram > 0), histogram, 0.0)
    values, index = suppressed.view(batch, -1).topk(min(peaks, suppressed[0].numel()), dim=1)
    iz = index % size_z
    iy = (index // size_z) % size_xy
    ix = index // (size_z * size_xy)
    centres = torch.stack([ix, iy, iz], -1).to(source.dtype) * bin_size + lower + bin_size / 2
    centres = torch.where((values > 0)[..., None], centres, torch.zeros_like(centres))
    zero = torch.zeros(batch, 1, 3, dtype=source.dtype, device=source.device)
    return torch.cat([centres, zero], dim=1)


def best_translation(
    source: torch.Tensor,
    target: torch.Tensor,
    source_mask: torch.Tensor,
    target_mask: torch.Tensor,
    candidates: torch.Tensor,
) -> torch.Tensor:
    """The candidate ``(B, 3)`` with the lowest bidirectional mean nearest-neighbour distance."""
    scores = []
    for k in range(candidates.shape[1]):
        moved = source + candidates[:, k, None, :]
        forward, _ = nearest(moved, target, target_mask)
        backward, _ = nearest(target, moved, source_mask)
        f = torch.where(source_mask, forward, 0.0).sum(1) / source_mask.sum(1).clamp_min(1)
        b = torch.where(target_mask, backward, 0.0).sum(1) / target_mask.sum(1).clamp_min(1)
        scores.append((f + b) / 2)
    choice = torch.stack(scores, 1).argmin(1)
    return candidates[torch.arange(candidates.shape[0]), choice]
