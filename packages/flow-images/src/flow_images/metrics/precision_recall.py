"""Improved precision and recall in feature space (Kynkäänniemi et al. 2019).

Each set approximates its manifold by the union of balls around its points, the radius of
each ball being the distance to that point's k-th nearest neighbour within the set (the point
itself excluded):

    f(φ, Φ) = 1 if ‖φ − φ′‖₂ ≤ ‖φ′ − NN_k(φ′, Φ)‖₂ for some φ′ ∈ Φ, else 0,
    precision = (1/|Φ_g|) Σ_{φ_g ∈ Φ_g} f(φ_g, Φ_r),
    recall    = (1/|Φ_r|) Σ_{φ_r ∈ Φ_r} f(φ_r, Φ_g),

with Φ_r the real and Φ_g the generated features; the paper uses k = 3. Precision is the
fraction of samples that look real, recall the fraction of real data the samples cover.
"""

from __future__ import annotations

import torch
from torch import Tensor

from flow_core.errors import ConfigError
from flow_images.metrics._checks import check_features

__all__ = ["precision_recall"]

_CHUNK = 1024


def _radii(points: Tensor, k: int) -> Tensor:
    """Distance of each point to its k-th nearest neighbour in ``points`` (itself excluded)."""
    return torch.cat(
        [
            torch.cdist(points[i : i + _CHUNK], points).kthvalue(k + 1, dim=1).values
            for i in range(0, len(points), _CHUNK)
        ]
    )


def _coverage(queries: Tensor, points: Tensor, radii: Tensor) -> float:
    """Fraction of ``queries`` inside at least one ball (``points``, ``radii``)."""
    inside = torch.cat(
        [
            (torch.cdist(queries[i : i + _CHUNK], points) <= radii).any(dim=1)
            for i in range(0, len(queries), _CHUNK)
        ]
    )
    return float(inside.double().mean())


def precision_recall(real: Tensor, fake: Tensor, k: int = 3) -> tuple[float, float]:
    """(precision, recall) of ``fake`` (m, D) against ``real`` (n, D) with k-NN balls."""
    if k < 1:
        raise ConfigError(f"precision_recall: k must be >= 1, got {k}")
    check_features("precision_recall", real, fake, min_size=k + 1)
    real64, fake64 = real.detach().double(), fake.detach().double()
    precision = _coverage(fake64, real64, _radii(real64, k))
    recall = _coverage(real64, fake64, _radii(fake64, k))
    return precision, recall
