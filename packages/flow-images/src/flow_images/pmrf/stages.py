"""The training data of PMRF's stages and of the posterior-sampling baseline.

Every batch draws clean training images x and degrades them afresh with the loop's generator
(so a resumed run sees the batches an uninterrupted one would):

- the restorer (stage 1): ``{"y": observation, "x1": x}`` for :class:`RestorerMSE`;
- PMRF's flow (stage 2): ``{"x0": f(y) + σ_s·ξ, "x1": x}``, the rectified flow from the
  restorer's output plus small Gaussian noise (σ_s; Ohayon et al. 2025, arXiv
  2410.00418) to the clean image; any velocity objective of core reads ``x0`` as its source;
- the posterior-sampling flow: ``{"x1": x, "cond": observation}`` (source: N(0, I)).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from flow_images.pmrf.degradations import Degradation

__all__ = ["Batches", "flow_batches", "pmrf_source", "posterior_batches", "restorer_batches"]

Batches = Callable[[torch.Generator], dict[str, Tensor]]


def _draw(images: Tensor, size: int, generator: torch.Generator) -> Tensor:
    return images[torch.randint(0, images.shape[0], (size,), generator=generator)]


def restorer_batches(images: Tensor, degrade: Degradation, size: int) -> Batches:
    """Batches of (observation, clean image) pairs for the restorer."""

    def draw(generator: torch.Generator) -> dict[str, Tensor]:
        x = _draw(images, size, generator)
        return {"y": degrade(x, generator)[1], "x1": x}

    return draw


@torch.no_grad()
def pmrf_source(
    restorer: nn.Module, observation: Tensor, sigma: float, generator: torch.Generator
) -> Tensor:
    """Z0 = f(y) + σ_s·ξ on the restorer's device, ξ ~ N(0, I) drawn from ``generator``."""
    device = next(restorer.parameters()).device
    estimate = restorer(observation.to(device))
    noise = torch.randn(estimate.shape, generator=generator, dtype=estimate.dtype)
    out: Tensor = estimate + sigma * noise.to(device)
    return out


def flow_batches(
    images: Tensor, degrade: Degradation, size: int, restorer: nn.Module, sigma: float
) -> Batches:
    """Batches ``{"x0": f(y) + σ_s·ξ, "x1": x}`` for PMRF's rectified flow."""
    restorer.eval()

    def draw(generator: torch.Generator) -> dict[str, Tensor]:
        x = _draw(images, size, generator)
        source = pmrf_source(restorer, degrade(x, generator)[1], sigma, generator)
        return {"x0": source, "x1": x}

    return draw


def posterior_batches(images: Tensor, degrade: Degradation, size: int) -> Batches:
    """Batches ``{"x1": x, "cond": observation}`` for the observation-conditioned flow."""

    def draw(generator: torch.Generator) -> dict[str, Tensor]:
        x = _draw(images, size, generator)
        return {"x1": x, "cond": degrade(x, generator)[1]}

    return draw
