"""SCOOP's test-time flow refinement (Lang et al. 2023, §3.4).

Starting from the network's flow f and confidence c, a per-point residual Δ (initialised at 0)
is optimised with Adam (lr 0.2, 150 steps) to minimise

    L(Δ) = (1/N) Σ_i c_i min_j ‖p_i + f_i + Δ_i − q_j‖² + λ · smooth(f + Δ),   λ = 1,

with the smoothness over the 32 nearest neighbours of p_i. Source points are processed in chunks
of 2048 against the whole target, as in the reference.
"""

from __future__ import annotations

import torch

from flow_sceneflow.scoop.losses import chamfer_forward, smoothness
from flow_sceneflow.scoop.model import knn

__all__ = ["refine_flow"]


def refine_flow(
    pc1: torch.Tensor,
    pc2: torch.Tensor,
    flow: torch.Tensor,
    confidence: torch.Tensor,
    steps: int = 150,
    lr: float = 0.2,
    smooth_weight: float = 1.0,
    neighbours: int = 32,
    chunk: int = 2048,
) -> torch.Tensor:
    """Refined flow ``(N, 3)`` for source ``pc1`` ``(N, 3)`` against target ``pc2`` ``(M, 3)``."""
    refined = flow.detach().clone()
    order = torch.arange(pc1.shape[0])
    target = pc2[None].detach()
    for begin in range(0, pc1.shape[0], chunk):
        index = order[begin : begin + chunk]
        points = pc1[index][None].detach()
        base = flow[index][None].detach()
        weight = confidence[index][None].detach()
        graph = knn(points, neighbours + 1)
        residual = torch.zeros_like(base, requires_grad=True)
        optimizer = torch.optim.Adam([residual], lr=lr)
        for _ in range(steps):
            optimizer.zero_grad()
            current = base + residual
            loss = chamfer_forward(points + current, target, weight)
            if graph.shape[2] > 1:
                loss = loss + smooth_weight * smoothness(current, graph)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
        refined[index] = (base + residual).detach()[0]
    return refined
