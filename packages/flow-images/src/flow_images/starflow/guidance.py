"""STARFlow's closed-form Gaussian guidance (Gu et al. 2025, arXiv 2506.06276, §3.3).

Decoding a token of an autoregressive flow draws it from a Gaussian, N(μ, σ²) with σ = e^{a}.
Guidance towards p_c^{1+w}·p_u^{−w} (conditional c, unconditional u) is again a Gaussian when
its precision is positive: with s = min(σ_c/σ_u, 1)²,

    precision  (1 + w)/σ_c² − w·s/σ_c² = (1 + w − w·s)/σ_c²,
    σ̃ = σ_c / √(1 + w − w·s),   μ̃ = ((1 + w)·μ_c − w·s·μ_u) / (1 + w − w·s).

Clipping s at 1 keeps 1 + w − w·s >= 1, so σ̃ <= σ_c stays finite and positive for every
w >= 0, where TARFlow's linear rule (extrapolating a = log σ) can blow up. At w = 0 it is the
conditional model.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["gaussian_rule"]


def gaussian_rule(
    mu_c: Tensor, a_c: Tensor, mu_u: Tensor, a_u: Tensor, weight: float
) -> tuple[Tensor, Tensor]:
    """The guided ``(μ̃, ã = log σ̃)`` of the module docstring."""
    s = torch.exp(2 * (a_c - a_u).clamp(max=0.0))  # min(σ_c/σ_u, 1)²
    denominator = 1 + weight - weight * s
    mu = ((1 + weight) * mu_c - weight * s * mu_u) / denominator
    return mu, a_c - 0.5 * torch.log(denominator)
