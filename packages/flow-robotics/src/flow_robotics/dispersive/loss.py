"""Dispersive losses: push a batch's embeddings apart, with no positive pairs.

Wang & He 2025, "Diffuse and Disperse: Image Generation with Representation Regularization"
(arXiv 2506.09027), used on policy embeddings by DM1 (Zou et al. 2025, "DM1: MeanFlow with
Dispersive Regularization for 1-Step Robotic Manipulation"). For a batch of embeddings
z_1 … z_B (flattened), with distances d_ij:

- ``infonce-l2``:  L = log (1/B²) Σ_ij exp(−‖z_i − z_j‖² / (τ·D)), the InfoNCE loss with
  only its denominator (D&D eq. 4 with squared L2); we divide by the width D so that τ does not
  depend on it;
- ``infonce-cosine``: L = log (1/B²) Σ_ij exp(cos(z_i, z_j) / τ);
- ``hinge``: L = mean_{i≠j} max(0, m − d_ij)², d_ij = ‖z_i − z_j‖/√D, margin m (D&D's hinge);
- ``covariance``: on centred embeddings with covariance C, L = Σ_{i≠j} C_ij² / D +
  mean_i max(0, 1 − C_ii) (decorrelate the features, keep each one's variance).

Each is large for a collapsed batch (all z_i equal) and small for a spread one. DM1's release
computed its term under ``torch.no_grad`` (dm1-release#3), so it never trained anything; here
the loss is an ordinary differentiable function of the embeddings.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from flow_core.errors import ConfigError

__all__ = ["VARIANTS", "dispersive_loss"]


def _flatten(z: Tensor) -> Tensor:
    return z.reshape(z.shape[0], -1)


def _infonce_l2(z: Tensor, tau: float, margin: float) -> Tensor:
    squared = torch.cdist(z, z).square() / z.shape[1]
    return torch.logsumexp(-squared.flatten() / tau, dim=0) - math.log(squared.numel())


def _infonce_cosine(z: Tensor, tau: float, margin: float) -> Tensor:
    unit = torch.nn.functional.normalize(z, dim=1)
    cosine = unit @ unit.T
    return torch.logsumexp(cosine.flatten() / tau, dim=0) - math.log(cosine.numel())


def _hinge(z: Tensor, tau: float, margin: float) -> Tensor:
    batch = z.shape[0]
    # distances from squared norms: cdist's gradient is undefined at zero distance
    squared = (z[:, None, :] - z[None, :, :]).square().sum(-1) / z.shape[1]
    off = ~torch.eye(batch, dtype=torch.bool, device=z.device)
    distance = (squared[off] + 1e-12).sqrt()
    return torch.relu(margin - distance).square().mean()


def _covariance(z: Tensor, tau: float, margin: float) -> Tensor:
    centred = z - z.mean(dim=0, keepdim=True)
    cov = centred.T @ centred / max(z.shape[0] - 1, 1)
    diagonal = torch.diagonal(cov)
    off = cov.square().sum() - diagonal.square().sum()
    return off / z.shape[1] + torch.relu(1.0 - diagonal).mean()


VARIANTS: dict[str, Callable[[Tensor, float, float], Tensor]] = {
    "infonce-l2": _infonce_l2,
    "infonce-cosine": _infonce_cosine,
    "hinge": _hinge,
    "covariance": _covariance,
}
"""The dispersive losses by name (module docstring)."""


def dispersive_loss(z: Tensor, variant: str, tau: float = 0.5, margin: float = 1.0) -> Tensor:
    """The dispersive loss ``variant`` of a batch of embeddings ``z`` (shape ``(B, ...)``).

    Raises:
        ConfigError: an unknown variant, a temperature ≤ 0, or a batch of fewer than 2.
    """
    if variant not in VARIANTS:
        raise ConfigError(
            f"unknown dispersive variant {variant!r}; expected one of: {', '.join(VARIANTS)}"
        )
    if not tau > 0:
        raise ConfigError(f"dispersive temperature must be > 0, got {tau}")
    if z.shape[0] < 2:
        raise ConfigError(f"a dispersive loss needs a batch of >= 2 embeddings, got {z.shape[0]}")
    return VARIANTS[variant](_flatten(z), tau, margin)
