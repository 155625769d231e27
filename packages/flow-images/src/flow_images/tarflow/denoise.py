"""TARFlow's score-based denoising of samples (Zhai et al. 2024, arXiv 2412.06329, §3.3).

A flow trained on x + σε (ε ~ N(0, I)) models the noisy density p_σ; its samples carry that
noise. By Tweedie's formula the posterior mean of the clean image is

    E[x | x̃] = x̃ + σ²·∇_x̃ log p_σ(x̃),

and the score is exact for a normalizing flow: ∇ log p = ∇(log N(f(x̃); 0, I) + log|det|),
computed by autograd through the flow. One step of it removes the training noise.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from flow_core.errors import ConfigError
from flow_core.objectives import gaussian_log_density
from flow_images.tarflow.model import as_family

__all__ = ["denoise", "log_density"]


def log_density(model: nn.Module, x: Tensor, cond: Tensor | None = None) -> Tensor:
    """log p(x) per sample ``(B,)`` under an invertible flow (nats)."""
    z, logdet = model(x, cond)
    out: Tensor = gaussian_log_density(z) + logdet
    return out


def denoise(
    model: nn.Module, x: Tensor, sigma: float, cond: Tensor | None = None, batch_size: int = 256
) -> Tensor:
    """x̃ + σ²·∇ log p(x̃) for each sample (the flow behind a guided wrapper is used)."""
    if sigma < 0:
        raise ConfigError(f"denoising noise level must be >= 0, got {sigma}")
    flow, _ = as_family(model, "denoising")
    outputs = []
    for start in range(0, x.shape[0], batch_size):
        chunk = x[start : start + batch_size].detach().requires_grad_(True)
        labels = None if cond is None else cond[start : start + batch_size]
        with torch.enable_grad():
            (score,) = torch.autograd.grad(log_density(flow, chunk, labels).sum(), chunk)
        outputs.append((chunk + sigma**2 * score).detach())
    return torch.cat(outputs)
