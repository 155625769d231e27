"""SCOOP's correspondence model: SetConv point features and entropic optimal transport.

Lang, Aiger, Cole, Avidan & Rubinstein (CVPR 2023), "SCOOP: Self-Supervised Correspondence and
Optimization-Based Scene Flow".

* Features: three FLOT-style SetConv layers (3 → 32 → 64 → 128 channels) on a k-nearest-
  neighbour graph (k = 32). A layer maps each edge (i, j) to MLP([h_j, p_j − p_i]) (three 1×1
  layers with instance normalisation and LeakyReLU(0.1)) and max-pools over j.
* Transport: cost C_ij = 1 − cos(f1_i, f2_j), kernel K = exp(−C/ε) masked to pairs closer than
  10 m, then ``iterations`` (1) steps of unbalanced Sinkhorn with uniform marginals and
  power γ/(γ + ε): b = (1/M / Kᵀa)^{γ/(γ+ε)}, a = (1/N / K b)^{γ/(γ+ε)}, T = diag(a) K diag(b).
  ε = exp(ε′) + 0.03 and γ = exp(γ′) are learned.
* Flow: the top-``top_k`` (64) transport weights of each source point, normalised, reconstruct a
  target point q̂_i = Σ_j w_ij q_j; flow f_i = q̂_i − p_i; confidence c_i = max(0, Σ_j w_ij S_ij)
  with S the cosine similarity.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ScoopModel", "SetConv", "knn"]


def knn(points: torch.Tensor, k: int) -> torch.Tensor:
    """Indices ``(B, N, k)`` of each point's k nearest neighbours (itself first)."""
    k = min(k, points.shape[1])
    return torch.cdist(points, points).topk(k, dim=2, largest=False).indices


def _gather(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """values ``(B, N, C)``, index ``(B, N, k)`` → ``(B, N, k, C)``."""
    batch = torch.arange(values.shape[0], device=values.device)[:, None, None]
    return values[batch, index]


class _InstanceNorm(nn.Module):
    """Instance normalisation over points and neighbours, per channel, with affine parameters."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(1, 2), keepdim=True)
        var = x.var(dim=(1, 2), keepdim=True, unbiased=False)
        return (x - mean) * torch.rsqrt(var + 1e-5) * self.weight + self.bias


class SetConv(nn.Module):
    """One SetConv layer (FLOT, Puy et al. 2020): edge MLP on [h_j, p_j − p_i], max over j."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_channels + 3
        for _ in range(3):
            layers += [
                nn.Linear(width, out_channels, bias=False),
                _InstanceNorm(out_channels),
                nn.LeakyReLU(0.1),
            ]
            width = out_channels
        self.mlp = nn.Sequential(*layers)

    def forward(
        self, features: torch.Tensor, points: torch.Tensor, graph: torch.Tensor
    ) -> torch.Tensor:
        edges = torch.cat(
            [_gather(features, graph), _gather(points, graph) - points[:, :, None, :]], dim=-1
        )
        out: torch.Tensor = self.mlp(edges)
        return out.amax(dim=2)


class ScoopModel(nn.Module):
    """Features, transport plan and the initial flow with its confidence (module docstring)."""

    def __init__(
        self, neighbours: int = 32, top_k: int = 64, iterations: int = 1, max_distance: float = 10.0
    ) -> None:
        super().__init__()
        self.neighbours = neighbours
        self.top_k = top_k
        self.iterations = iterations
        self.max_distance = max_distance
        self.layers = nn.ModuleList([SetConv(3, 32), SetConv(32, 64), SetConv(64, 128)])
        self.epsilon_raw = nn.Parameter(torch.zeros(1))
        self.gamma_raw = nn.Parameter(torch.zeros(1))

    def features(self, points: torch.Tensor) -> torch.Tensor:
        graph = knn(points, self.neighbours)
        h = points
        for layer in self.layers:
            h = layer(h, points, graph)
        return h

    def transport(
        self, pc1: torch.Tensor, pc2: torch.Tensor, f1: torch.Tensor, f2: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Transport plan ``(B, N, M)`` and cosine similarity ``(B, N, M)``."""
        epsilon = torch.exp(self.epsilon_raw) + 0.03
        gamma = torch.exp(self.gamma_raw)
        similarity = nn.functional.normalize(f1, dim=-1) @ nn.functional.normalize(
            f2, dim=-1
        ).transpose(1, 2)
        support = (torch.cdist(pc1, pc2) < self.max_distance).to(pc1.dtype)
        kernel = torch.exp(-(1.0 - similarity) / epsilon) * support
        power = gamma / (gamma + epsilon)
        a = torch.full(
            (pc1.shape[0], pc1.shape[1], 1), 1.0 / pc1.shape[1], dtype=pc1.dtype, device=pc1.device
        )
        prob1 = a.clone()
        prob2 = torch.full(
            (pc2.shape[0], pc2.shape[1], 1), 1.0 / pc2.shape[1], dtype=pc1.dtype, device=pc1.device
        )
        b = prob2
        for _ in range(self.iterations):
            b = torch.pow(prob2 / (kernel.transpose(1, 2) @ a + 1e-8), power)
            a = torch.pow(prob1 / (kernel @ b + 1e-8), power)
        return a * kernel * b.transpose(1, 2), similarity

    def forward(self, pc1: torch.Tensor, pc2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Initial flow ``(B, N, 3)`` and confidence ``(B, N)`` for ``pc1`` → ``pc2``."""
        plan, similarity = self.transport(pc1, pc2, self.features(pc1), self.features(pc2))
        weights, index = plan.topk(min(self.top_k, pc2.shape[1]), dim=2)
        weights = weights / (weights.sum(2, keepdim=True) + 1e-8)
        reconstruction = (weights[..., None] * _gather(pc2, index)).sum(2)
        confidence = (weights * torch.gather(similarity, 2, index)).sum(2).clamp_min(0.0)
        return reconstruction - pc1, confidence
