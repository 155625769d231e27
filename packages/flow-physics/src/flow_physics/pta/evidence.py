"""Bayesian evidence estimators: importance sampling and the learned harmonic mean.

Both return an :class:`EvidenceEstimate` with ``ln Z``, its standard error and an effective
sample size. Lai & Li 2025 (arXiv 2504.04211) compare PTA source models by evidences from
the learned harmonic mean estimator (McEwen et al. 2021, arXiv 2111.12720) on normalizing-flow
posterior samples; with a flow that can sample and evaluate its density, importance sampling
from it is the second estimator.

Importance sampling. With ``x_i ~ q`` and weights ``w_i = L(x_i) pi(x_i) / q(x_i)``,
``Z = E_q[w]`` is estimated by the mean of the weights; ``se(ln Z) = sd(w) / (sqrt(n) mean(w))``
(delta method) and ``ESS = (sum w)^2 / sum w^2``.

Learned harmonic mean. For any normalised density ``phi``,
``1/Z = E_posterior[phi(x) / (L(x) pi(x))]``. ``phi`` must be narrower than the posterior
(finite variance), so it is fitted on one half of the posterior samples — here a Gaussian with
the sample mean and covariance, the covariance multiplied by a temperature ``T < 1`` — and the
average is taken over the other half. The held-out half is split into ``n_splits`` contiguous
blocks (chains); the spread of the per-block estimates of ``1/Z`` gives the standard error.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from flow_core.errors import ConfigError

__all__ = [
    "EvidenceEstimate",
    "GaussianDensity",
    "Proposal",
    "importance_sampling",
    "learned_harmonic_mean",
    "ln_bayes_factor",
]


@runtime_checkable
class Proposal(Protocol):
    """A normalised density that can be sampled: a fitted flow, a Gaussian, the prior."""

    def sample(self, n: int) -> Tensor:
        """``n`` draws, shape ``(n, dim)``."""
        ...

    def log_prob(self, x: Tensor) -> Tensor:
        """Normalised log density of each row of ``x``, shape ``(n,)``."""
        ...


@dataclass(frozen=True)
class EvidenceEstimate:
    """``ln Z`` with its standard error, the effective sample size and the samples used."""

    ln_z: float
    ln_z_err: float
    ess: float
    n: int


class GaussianDensity:
    """A multivariate normal ``N(mean, cov)`` as a :class:`Proposal` (float64, seeded)."""

    def __init__(self, mean: Tensor, cov: Tensor, seed: int = 0) -> None:
        self.mean = mean.to(torch.float64)
        self.cov = cov.to(torch.float64)
        self._chol = torch.linalg.cholesky(self.cov)
        self._generator = torch.Generator(device=self.mean.device).manual_seed(seed)

    @classmethod
    def fit(cls, samples: Tensor, scale: float = 1.0, seed: int = 0) -> GaussianDensity:
        """The Gaussian with the samples' mean and covariance times ``scale``."""
        x = samples.to(torch.float64)
        dim = x.shape[1]
        cov = torch.cov(x.T).reshape(dim, dim)
        return cls(x.mean(0), cov * scale, seed)

    def sample(self, n: int) -> Tensor:
        """``n`` draws, shape ``(n, dim)``."""
        z = torch.randn(
            n,
            len(self.mean),
            generator=self._generator,
            dtype=self.mean.dtype,
            device=self.mean.device,
        )
        draws: Tensor = self.mean + z @ self._chol.T
        return draws

    def log_prob(self, x: Tensor) -> Tensor:
        """Normalised log density of each row of ``x``."""
        diff = (x.to(self.mean) - self.mean).unsqueeze(-1)
        white = torch.linalg.solve_triangular(self._chol, diff, upper=False).squeeze(-1)
        half_logdet = torch.log(self._chol.diagonal()).sum()
        dim = len(self.mean)
        norm = half_logdet + 0.5 * dim * math.log(2 * math.pi)
        log_density: Tensor = -0.5 * (white**2).sum(-1) - norm
        return log_density


def _log_mean_and_rel_err(log_w: Tensor) -> tuple[float, float, float]:
    """``ln mean(w)``, ``sd(w) / (sqrt(n) mean(w))`` and ``(sum w)^2 / sum w^2`` from ``ln w``."""
    n = log_w.numel()
    shifted = torch.exp(log_w - log_w.max())
    mean = shifted.mean()
    rel_err = float(shifted.std() / (math.sqrt(n) * mean)) if n > 1 else math.inf
    ess = float(shifted.sum() ** 2 / (shifted**2).sum())
    return float(torch.log(mean) + log_w.max()), rel_err, ess


def importance_sampling(
    log_target: Callable[[Tensor], Tensor], proposal: Proposal, n: int
) -> EvidenceEstimate:
    """Importance-sampling evidence of an unnormalised posterior.

    Args:
        log_target: ``ln L(x) + ln pi(x)`` for each row of ``x`` (normalised prior).
        proposal: a density with ``sample(n)`` and ``log_prob(x)``, wider than the posterior.
        n: number of draws.

    Returns:
        ``ln Z``, its standard error (delta method), the weights' ESS, and ``n``.
    """
    if n < 2:
        raise ConfigError(f"importance_sampling: n={n}; accepted: n >= 2")
    x = proposal.sample(n)
    log_w = log_target(x).to(torch.float64) - proposal.log_prob(x).to(torch.float64)
    log_w = torch.nan_to_num(log_w, nan=-math.inf)
    if not torch.isfinite(log_w).any():
        raise ConfigError(
            "importance_sampling: every weight is zero; the proposal misses the "
            "posterior (accepted: a proposal that covers it)"
        )
    ln_z, rel_err, ess = _log_mean_and_rel_err(log_w)
    return EvidenceEstimate(ln_z, rel_err, ess, n)


def learned_harmonic_mean(
    samples: Tensor, log_target: Tensor, temperature: float = 0.8, n_splits: int = 10
) -> EvidenceEstimate:
    """Learned-harmonic-mean evidence from posterior samples.

    Args:
        samples: posterior draws, shape ``(n, dim)``, in chain order.
        log_target: ``ln L + ln pi`` (normalised prior) at each draw, shape ``(n,)``.
        temperature: ``T`` in (0, 1): the fitted Gaussian's covariance is multiplied by ``T``.
        n_splits: blocks of the held-out half, for the standard error.

    Returns:
        ``ln Z = -ln mean(phi / (L pi))`` over the held-out half, its standard error from the
        spread of the block estimates, the ESS of the terms, and the number of held-out draws.
    """
    if samples.ndim != 2 or log_target.shape != samples.shape[:1]:
        raise ConfigError(
            f"learned_harmonic_mean: samples {tuple(samples.shape)} and log_target "
            f"{tuple(log_target.shape)}; accepted: (n, dim) and (n,)"
        )
    if not 0.0 < temperature < 1.0:
        raise ConfigError(f"learned_harmonic_mean: temperature={temperature}; accepted: (0, 1)")
    half = len(samples) // 2
    if n_splits < 2 or len(samples) - half < 2 * n_splits:
        raise ConfigError(
            f"learned_harmonic_mean: {len(samples)} samples and n_splits={n_splits}; accepted: "
            "n_splits >= 2 and at least 4 * n_splits samples"
        )
    phi = GaussianDensity.fit(samples[:half], scale=temperature)
    test, log_post = samples[half:], log_target[half:].to(torch.float64)
    log_terms = phi.log_prob(test) - log_post
    shift = log_terms.max()
    terms = torch.exp(log_terms - shift)
    blocks = torch.stack([block.mean() for block in torch.tensor_split(terms, n_splits)])
    mean = terms.mean()
    rel_err = float(blocks.std() / (math.sqrt(n_splits) * mean))
    ess = float(terms.sum() ** 2 / (terms**2).sum())
    return EvidenceEstimate(-float(torch.log(mean) + shift), rel_err, ess, len(test))


def ln_bayes_factor(model: EvidenceEstimate, reference: EvidenceEstimate) -> tuple[float, float]:
    """``ln B = ln Z_model - ln Z_reference`` and its standard error (independent estimates:
    the errors add in quadrature)."""
    return model.ln_z - reference.ln_z, math.hypot(model.ln_z_err, reference.ln_z_err)
