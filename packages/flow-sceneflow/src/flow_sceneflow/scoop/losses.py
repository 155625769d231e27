"""SCOOP's self-supervised losses (Lang et al. 2023, §3.3), no ground truth needed.

* confidence-weighted one-sided Chamfer: (1/N) Σ_i c_i min_j ‖p_i + f_i − q_j‖² (squared
  distances; the backward term has weight 0);
* confidence: 1 − mean_i c_i (weight 0.1 in training);
* smoothness: (1/N) Σ_i (1/k) Σ_{j ∈ kNN(i)} ‖f_i − f_j‖₁ over the k = 32 nearest neighbours of
  p_i (weight 10 in training, 1 in refinement).
"""

from __future__ import annotations

import torch

__all__ = ["chamfer_forward", "scoop_loss", "smoothness"]


def chamfer_forward(
    points: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean (weighted) squared distance from each of ``points`` to its nearest ``target`` point.

    The nearest neighbour is found without gradient; the distance to it carries the gradient
    (the same gradient as differentiating the minimum, at a fraction of the cost).
    """
    with torch.no_grad():
        index = torch.cdist(points, target).argmin(dim=2)
    batch = torch.arange(points.shape[0], device=points.device)[:, None]
    squared = (points - target[batch, index]).pow(2).sum(-1)
    if weights is not None:
        squared = squared * weights
    return squared.mean()


def smoothness(flow: torch.Tensor, graph: torch.Tensor) -> torch.Tensor:
    """Mean L1 flow difference to the neighbours in ``graph`` ``(B, N, k)`` (self excluded)."""
    neighbours = graph[:, :, 1:]
    batch = torch.arange(flow.shape[0], device=flow.device)[:, None, None]
    return (flow[:, :, None, :] - flow[batch, neighbours]).abs().sum(-1).mean()


def scoop_loss(
    flow: torch.Tensor,
    confidence: torch.Tensor,
    pc1: torch.Tensor,
    pc2: torch.Tensor,
    graph: torch.Tensor,
    confidence_weight: float = 0.1,
    smooth_weight: float = 10.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The training loss and its parts."""
    chamfer = chamfer_forward(pc1 + flow, pc2, confidence)
    conf = 1.0 - confidence.mean()
    smooth = smoothness(flow, graph)
    loss = chamfer + confidence_weight * conf + smooth_weight * smooth
    parts = {"chamfer": chamfer, "confidence": 1 - conf, "smooth": smooth}
    return loss, {k: float(v.detach()) for k, v in parts.items()}
