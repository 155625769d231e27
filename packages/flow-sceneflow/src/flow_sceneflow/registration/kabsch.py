"""Batched weighted Kabsch (orthogonal Procrustes without scale or reflection).

Kabsch (1976), "A solution for the best rotation to relate two sets of vectors": given
correspondences (p_i, q_i) and weights w_i, the rotation R and translation t minimising
Σ w_i ‖R p_i + t − q_i‖² are, with weighted centroids p̄, q̄ and covariance
H = Σ w_i (p_i − p̄)(q_i − q̄)ᵀ = U S Vᵀ,

    R = V diag(1, 1, sign det(V Uᵀ)) Uᵀ,      t = q̄ − R p̄.

The sign correction excludes reflections. Solved in float64 for every batch element at once.
"""

from __future__ import annotations

import torch

from flow_sceneflow.scan import PointCloudError

__all__ = ["kabsch", "to_homogeneous"]


def to_homogeneous(rotation: torch.Tensor, translation: torch.Tensor) -> torch.Tensor:
    """Stack ``(..., 3, 3)`` rotations and ``(..., 3)`` translations into ``(..., 4, 4)``."""
    transform = torch.zeros(
        *rotation.shape[:-2], 4, 4, dtype=rotation.dtype, device=rotation.device
    )
    transform[..., :3, :3] = rotation
    transform[..., :3, 3] = translation
    transform[..., 3, 3] = 1.0
    return transform


def kabsch(
    source: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """The rigid transforms ``(B, 4, 4)`` best mapping ``source`` onto ``target`` (``(B, N, 3)``).

    ``weights`` ``(B, N)`` (e.g. an inlier mask) defaults to ones. A batch element whose
    weights sum to zero gets the identity. Unbatched ``(N, 3)`` inputs give a ``(4, 4)`` result.
    """
    if source.shape != target.shape or source.shape[-1] != 3:
        raise PointCloudError(
            f"kabsch needs equal (B, N, 3) inputs, got {source.shape}, {target.shape}"
        )
    unbatched = source.dim() == 2
    p = (source[None] if unbatched else source).double()
    q = (target[None] if unbatched else target).double()
    w = (
        torch.ones(p.shape[:2], dtype=torch.float64, device=p.device)
        if weights is None
        else ((weights[None] if unbatched else weights).double())
    )
    total = w.sum(1, keepdim=True)
    empty = total[:, 0] <= 0
    norm = w / total.clamp_min(1e-12)
    p_mean = (norm[..., None] * p).sum(1)
    q_mean = (norm[..., None] * q).sum(1)
    covariance = torch.einsum("bn,bni,bnj->bij", norm, p - p_mean[:, None], q - q_mean[:, None])
    u, _, vh = torch.linalg.svd(covariance)
    v = vh.transpose(1, 2)
    sign = torch.sign(torch.linalg.det(v @ u.transpose(1, 2)))
    sign = torch.where(sign == 0, torch.ones_like(sign), sign)
    correction = torch.diag_embed(
        torch.stack([torch.ones_like(sign), torch.ones_like(sign), sign], -1)
    )
    rotation = v @ correction @ u.transpose(1, 2)
    translation = q_mean - torch.einsum("bij,bj->bi", rotation, p_mean)
    transform = to_homogeneous(rotation, translation)
    transform[empty] = torch.eye(4, dtype=torch.float64, device=p.device)
    return transform[0] if unbatched else transform
