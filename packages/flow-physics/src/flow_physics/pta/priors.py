"""Priors of PTA parameters, as normalised densities that can be sampled.

Each prior has ``sample(n) -> (n, dim)`` and ``log_prob(x) -> (n,)`` (the
:class:`~flow_physics.pta.evidence.Proposal` protocol), so it serves as the ``ln pi`` of an
evidence, as an importance-sampling proposal and as the base of a sampler.

* :class:`BoxUniform` — independent uniforms, e.g. the agnostic red-noise and background prior
  ``log10_A ~ U(-20, -11)``, ``gamma ~ U(0, 7)`` (NANOGrav 15-yr, arXiv 2306.16213);
* :func:`smbhb_astro_prior` — the NANOGrav 15-yr astrophysically informed SMBHB prior on
  ``(log10_A, gamma)``: a 2-D normal with mean (-15.61, 4.71) and covariance
  [[0.279, -0.0026], [-0.0026, 0.124]] (holodeck GWOnly-Ext; arXiv 2306.16219);
* :class:`JointPrior` — independent blocks side by side, in parameter order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from flow_core.errors import ConfigError
from flow_physics.pta.evidence import GaussianDensity, Proposal

__all__ = ["BoxUniform", "JointPrior", "smbhb_astro_prior"]


class BoxUniform:
    """Independent uniform priors ``U(low_i, high_i)`` (float64, seeded); ``log_prob`` is
    ``-inf`` outside the box."""

    def __init__(self, low: Sequence[float], high: Sequence[float], seed: int = 0) -> None:
        self.low = torch.tensor(low, dtype=torch.float64)
        self.high = torch.tensor(high, dtype=torch.float64)
        if self.low.shape != self.high.shape or self.low.ndim != 1 or len(self.low) == 0:
            raise ConfigError(
                f"BoxUniform: low {list(low)} and high {list(high)}; accepted: two equally long, "
                "non-empty lists"
            )
        if not bool((self.high > self.low).all()):
            raise ConfigError(f"BoxUniform: need low < high, got low={list(low)} high={list(high)}")
        self._log_volume = float(torch.log(self.high - self.low).sum())
        self._generator = torch.Generator().manual_seed(seed)

    @property
    def dim(self) -> int:
        """Number of parameters."""
        return len(self.low)

    def sample(self, n: int) -> Tensor:
        """``n`` draws, shape ``(n, dim)``."""
        u = torch.rand(n, self.dim, generator=self._generator, dtype=torch.float64)
        draws: Tensor = self.low + u * (self.high - self.low)
        return draws

    def log_prob(self, x: Tensor) -> Tensor:
        """``-sum ln(high - low)`` inside the box, ``-inf`` outside."""
        x = x.to(torch.float64)
        inside = ((x >= self.low.to(x.device)) & (x <= self.high.to(x.device))).all(-1)
        return torch.where(inside, -self._log_volume, -math.inf).to(x)


def smbhb_astro_prior(seed: int = 0) -> GaussianDensity:
    """The NANOGrav 15-yr astrophysical SMBHB prior on ``(log10_A, gamma)`` (a 2-D normal)."""
    mean = torch.tensor([-15.61, 4.71], dtype=torch.float64)
    cov = torch.tensor([[0.279, -0.0026], [-0.0026, 0.124]], dtype=torch.float64)
    return GaussianDensity(mean, cov, seed)


class JointPrior:
    """Independent priors over consecutive blocks of the parameter vector.

    Args:
        parts: ``(prior, dim)`` pairs in parameter order; each prior has ``sample`` and
            ``log_prob`` over its own ``dim`` columns.
    """

    def __init__(self, parts: Sequence[tuple[Proposal, int]]) -> None:
        if not parts or any(dim < 1 for _, dim in parts):
            raise ConfigError("JointPrior: needs at least one (prior, dim) with dim >= 1")
        self.parts = list(parts)
        self.dim = sum(dim for _, dim in parts)

    def sample(self, n: int) -> Tensor:
        """``n`` draws, shape ``(n, dim)``: the blocks' draws side by side."""
        return torch.cat([prior.sample(n).to(torch.float64) for prior, _ in self.parts], dim=1)

    def log_prob(self, x: Tensor) -> Tensor:
        """The sum of the blocks' log densities."""
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ConfigError(f"JointPrior: x has shape {tuple(x.shape)}; expected (n, {self.dim})")
        total = torch.zeros(len(x), dtype=torch.float64, device=x.device)
        start = 0
        for prior, dim in self.parts:
            total = total + prior.log_prob(x[:, start : start + dim]).to(total)
            start += dim
        return total
