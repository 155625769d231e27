"""Training noise and test-split bits per dimension of TARFlow-family flows.

Zhai et al. 2024 (TARFlow, arXiv 2412.06329), §3.2: a flow trained for sample quality sees
x + σε with Gaussian ε (σ = 0.05 at 64 px), which the denoising step later removes; a
likelihood run instead adds uniform dequantisation noise u ~ U(−Δ/2, Δ/2) of the data's bin
width Δ (Theis et al. 2016), for which

    −log₂ P(x) ≤ E_u[−log₂ p(x + u)] − D·log₂ Δ,

so the discrete bits per dimension are the continuous ones plus −log₂ Δ (3 bits for the
digits' 17 grey levels spaced Δ = 1/8 apart in [−1, 1]).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from flow_core.errors import ConfigError
from flow_images.tarflow.denoise import log_density

__all__ = ["NOISES", "bits_per_dim", "perturb"]

NOISES = ("gaussian", "uniform")


def perturb(x: Tensor, noise: str, level: float, generator: torch.Generator | None) -> Tensor:
    """x + σε (``gaussian``, level = σ) or x + u, u ~ U(−Δ/2, Δ/2) (``uniform``, level = Δ)."""
    if noise == "gaussian":
        eps = torch.randn(x.shape, generator=generator, dtype=x.dtype)
        return x + level * eps.to(x.device)
    if noise == "uniform":
        u = torch.rand(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        return x + level * (u - 0.5)
    raise ConfigError(f"noise must be one of {', '.join(NOISES)}; got {noise!r}")


@torch.no_grad()
def bits_per_dim(
    flow: nn.Module,
    images: Tensor,
    labels: Tensor | None,
    noise: str,
    level: float,
    seed: int,
    repeats: int = 1,
    batch_size: int = 256,
) -> float:
    """E[−log₂ p(x + noise)]/D over ``images`` and ``repeats`` noise draws (continuous bits)."""
    device = next(flow.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    total, count = 0.0, 0
    for _ in range(repeats):
        for start in range(0, images.shape[0], batch_size):
            x = perturb(images[start : start + batch_size], noise, level, generator).to(device)
            cond = None if labels is None else labels[start : start + batch_size].to(device)
            total += float(-log_density(flow, x, cond).sum())
            count += x.shape[0]
    return total / (count * images[0].numel() * math.log(2))
