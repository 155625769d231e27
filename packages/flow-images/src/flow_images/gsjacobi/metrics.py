"""GS-Jacobi's two metrics (Liu & Qin 2025, "Accelerate TarFlow sampling with GS-Jacobi
iteration", arXiv 2505.12849, §4).

Inverting an autoregressive block is the fixed-point problem x = F(x) with
F(x)_i = z_i·e^{a_i(x_<i)} + μ_i(x_<i). Jacobi iteration converges fast where F is a weak
contraction, i.e. where the block's parameters depend little on the prefix.

- **Convergence Ranking Metric (CRM).** A bound on how strongly F reacts to its input, read
  from the block's output projection: CRM = ‖e^{a}⊙z‖·‖W_a‖ + ‖W_μ‖, with W_a and W_μ the
  rows of the projection that produce the log-scales and the shifts (spectral norms), and
  ‖e^{a}⊙z‖ the root-mean-square scaled latent of the batch. A few "tough" blocks score far
  above the rest; they get more GS modules.
- **Initial Guessing Metric (IGM).** Each block starts from the better of two guesses, its
  input z or zeros: the one whose first Jacobi residual ‖F(x⁽⁰⁾) − x⁽⁰⁾‖ is smaller (our
  reading of the paper's rule, computed on the batch being sampled).
"""

from __future__ import annotations

import torch
from torch import Tensor

from flow_images.tarflow.block import AutoregressiveBlock
from flow_images.tarflow.guidance import Guidance

__all__ = ["convergence_ranking_metric", "initial_guess", "jacobi_map"]


def jacobi_map(
    block: AutoregressiveBlock,
    x: Tensor,
    z: Tensor,
    labels: Tensor | None,
    guidance: Guidance | None,
) -> tuple[Tensor, Tensor]:
    """One Jacobi step on the whole sequence (block order): ``(F(x), a(x))``."""
    mu, a = block.predict(x[:, :-1], labels, guidance)
    first = z[:, :1]
    rest = z[:, 1:] * torch.exp(a) + mu
    return torch.cat([first, rest], dim=1), torch.cat([torch.zeros_like(first), a], dim=1)


@torch.no_grad()
def convergence_ranking_metric(
    block: AutoregressiveBlock, z: Tensor, labels: Tensor | None, guidance: Guidance | None
) -> float:
    """CRM of ``block`` for the latent ``z`` (block order), higher = harder to iterate."""
    _, a = jacobi_map(block, z, z, labels, guidance)
    scaled = (torch.exp(a) * z).square().mean().sqrt()
    dim = block.token_dim
    weight = block.head.weight
    shift_norm = torch.linalg.matrix_norm(weight[:dim], ord=2)
    scale_norm = torch.linalg.matrix_norm(weight[dim:], ord=2)
    return float(scaled * scale_norm + shift_norm)


@torch.no_grad()
def initial_guess(
    block: AutoregressiveBlock, z: Tensor, labels: Tensor | None, guidance: Guidance | None
) -> tuple[Tensor, str]:
    """The IGM's choice of starting point, ``(x⁽⁰⁾, "input" | "zeros")``."""
    candidates = {"input": z.clone(), "zeros": torch.zeros_like(z)}
    residuals = {}
    for name, guess in candidates.items():
        guess[:, 0] = z[:, 0]
        mapped, _ = jacobi_map(block, guess, z, labels, guidance)
        residuals[name] = float((mapped - guess).norm())
    best = min(residuals, key=residuals.__getitem__)
    return candidates[best], best
