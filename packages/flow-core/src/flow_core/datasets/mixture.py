"""Isotropic Gaussian mixtures and the exact flow-matching velocity that transports N(0, I) to one.

A mixture p(x1) = Σ_k π_k N(x1; μ_k, s_k²·I) is a target whose every quantity of interest is
known in closed form, so samplers and inference-time scaling (Kim et al. 2025) can be tested and
benchmarked without training a network.

**The marginal path.** Take the linear path of flow matching (Lipman et al. 2023; Liu et al.
2022) in the project convention, x_t = (1 − t)·x0 + t·x1 with x0 ~ N(0, I) independent of
x1 ~ p. Given the component k of x1, x_t is Gaussian:

    x_t | k ~ N(t·μ_k, V_k(t)·I),      V_k(t) = (1 − t)² + t²·s_k²,

so p_t is again a mixture, with means t·μ_k, variances V_k(t) and the same weights π_k
(:meth:`GaussianMixture.at_time`).

**The marginal velocity.** Within component k the pair (x1 − x0, x_t) is jointly Gaussian with
E[x1 − x0 | k] = μ_k and, per coordinate, Cov(x1 − x0, x_t | k) = t·s_k² − (1 − t). Gaussian
conditioning gives the per-component velocity (the Gaussian-to-Gaussian field; e.g. Lai, Song,
Kim, Mitsufuji & Ermon 2025, "The Principles of Diffusion Models", arXiv 2510.21890)

    v_k(x, t) = E[x1 − x0 | x_t = x, k] = μ_k + ((t·s_k² − (1 − t)) / V_k(t))·(x − t·μ_k),

and by the tower rule the marginal velocity E[x1 − x0 | x_t = x] is the posterior-weighted sum

    v(x, t) = Σ_k γ_k(x, t)·v_k(x, t),     γ_k(x, t) = π_k N(x; t·μ_k, V_k I) / p_t(x).

This is the minimiser of the flow-matching loss, so its ODE dx/dt = v(x, t) from x(0) ~ N(0, I)
ends exactly at p (Lipman et al. 2023, Thm. 1). The score of p_t is
∇log p_t(x) = −Σ_k γ_k(x, t)·(x − t·μ_k)/V_k(t), and the two satisfy the linear-path identity
s = (t·v − x)/(1 − t).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from flow_core.errors import ConfigError, FlowError

__all__ = ["GaussianMixture", "MixtureVelocity"]


def _component_log_densities(x: Tensor, means: Tensor, variances: Tensor) -> Tensor:
    """``log N(x_b; means_bk, variances_bk·I)`` of shape (B, K) for ``x`` (B, D).

    ``means`` is (K, D) or (B, K, D) and ``variances`` (K,) or (B, K).
    """
    dim = x.shape[-1]
    squared = (x.unsqueeze(-2) - means).pow(2).sum(-1)
    return -0.5 * squared / variances - 0.5 * dim * torch.log(2 * math.pi * variances)


class GaussianMixture:
    """The mixture ``p(x) = Σ_k π_k N(x; μ_k, s_k²·I)`` in ``D`` dimensions.

    Args:
        means: component means μ_k, shape (K, D).
        stds: component standard deviations s_k > 0, shape (K,) or a scalar shared by all.
        weights: non-negative weights π_k, shape (K,), normalised to sum to 1; uniform when
            ``None``.

    Raises:
        ConfigError: the shapes disagree, a standard deviation is not positive, or the weights
            are negative or sum to zero.
    """

    def __init__(self, means: Tensor, stds: Tensor | float, weights: Tensor | None = None) -> None:
        means = torch.as_tensor(means)
        if means.ndim != 2 or means.shape[0] < 1 or means.shape[1] < 1:
            raise ConfigError(f"GaussianMixture: means must have shape (K, D), got {means.shape}")
        if not means.is_floating_point():
            means = means.float()
        k = means.shape[0]
        stds = torch.as_tensor(stds, dtype=means.dtype, device=means.device)
        if stds.ndim == 0:
            stds = stds.expand(k).clone()
        if stds.shape != (k,) or not bool((stds > 0).all()):
            raise ConfigError(
                f"GaussianMixture: stds must be a positive scalar or have shape ({k},), "
                f"got {stds.tolist()}"
            )
        if weights is None:
            weights = torch.ones(k, dtype=means.dtype, device=means.device)
        weights = torch.as_tensor(weights, dtype=means.dtype, device=means.device)
        if weights.shape != (k,) or bool((weights < 0).any()) or not float(weights.sum()) > 0:
            raise ConfigError(
                f"GaussianMixture: weights must be {k} non-negative numbers with a positive sum, "
                f"got {weights.tolist()}"
            )
        self.means = means
        self.stds = stds
        self.weights = weights / weights.sum()

    @property
    def n_components(self) -> int:
        """The number of components K."""
        return int(self.means.shape[0])

    @property
    def dim(self) -> int:
        """The dimension D of a sample."""
        return int(self.means.shape[1])

    @classmethod
    def ring(
        cls,
        k: int = 8,
        radius: float = 2.0,
        std: float = 0.2,
        weights: Tensor | None = None,
    ) -> GaussianMixture:
        """``k`` components evenly spaced on a circle in 2-D, the first on the positive x-axis.

        The defaults are the ``eight-gaussians`` toy target of :mod:`flow_core.datasets.toy2d`.
        """
        if k < 1 or not radius >= 0:
            raise ConfigError(
                f"GaussianMixture.ring: need k >= 1 and radius >= 0, got {k}, {radius}"
            )
        angle = torch.arange(k, dtype=torch.float32) * (2 * math.pi / k)
        means = radius * torch.stack([angle.cos(), angle.sin()], dim=1)
        return cls(means, std, weights)

    @classmethod
    def random(
        cls,
        dim: int = 16,
        k: int = 8,
        radius: float = 4.0,
        std: float = 0.5,
        seed: int = 0,
    ) -> GaussianMixture:
        """``k`` equally weighted components with means drawn uniformly on the sphere of ``radius``.

        The means come from a generator seeded with ``seed``, so the mixture is reproducible.
        With the defaults (D = 16) the components are well separated: two random means lie
        about ``radius·√2 ≈ 5.7`` apart, against a within-component spread of ``std`` per axis.
        """
        if dim < 1 or k < 1 or not radius > 0:
            raise ConfigError(
                "GaussianMixture.random: need dim >= 1, k >= 1 and radius > 0, "
                f"got {dim}, {k} and {radius}"
            )
        generator = torch.Generator().manual_seed(seed)
        directions = torch.randn(k, dim, generator=generator)
        means = radius * directions / directions.norm(dim=1, keepdim=True)
        return cls(means, std)

    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> GaussianMixture:
        """The same mixture with its parameters on ``device`` and in ``dtype``."""
        return GaussianMixture(
            self.means.to(device=device, dtype=dtype),
            self.stds.to(device=device, dtype=dtype),
            self.weights.to(device=device, dtype=dtype),
        )

    def at_time(self, t: float) -> GaussianMixture:
        """The marginal p_t of the linear path from N(0, I) at time ``t`` in [0, 1].

        Its means are ``t·μ_k`` and its standard deviations ``√((1 − t)² + t²·s_k²)``.
        """
        if not 0.0 <= t <= 1.0:
            raise FlowError(f"GaussianMixture.at_time: t must lie in [0, 1], got {t}")
        stds = ((1 - t) ** 2 + t**2 * self.stds.pow(2)).sqrt()
        return GaussianMixture(t * self.means, stds, self.weights)

    def sample_with_components(
        self, n: int, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """``n`` samples (n, D) and the component index (n,) each was drawn from.

        Random numbers come from ``generator`` (torch's global generator when ``None``) on
        the device of the mixture's parameters.
        """
        if n < 0:
            raise FlowError(f"GaussianMixture.sample: n must be >= 0, got {n}")
        uniform = torch.rand(
            n, generator=generator, dtype=self.weights.dtype, device=self.weights.device
        )
        cumulative = self.weights.cumsum(0)
        components = torch.searchsorted(cumulative, uniform, right=True).clamp(
            max=self.n_components - 1
        )
        noise = torch.randn(
            (n, self.dim), generator=generator, dtype=self.means.dtype, device=self.means.device
        )
        return self.means[components] + self.stds[components, None] * noise, components

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` samples of shape (n, D) (see :meth:`sample_with_components`)."""
        return self.sample_with_components(n, generator)[0]

    def _check(self, x: Tensor) -> None:
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise FlowError(
                f"GaussianMixture: points must have shape (n, {self.dim}), got {tuple(x.shape)}"
            )

    def _joint_log_prob(self, x: Tensor) -> Tensor:
        self._check(x)
        means, stds, weights = (p.to(x) for p in (self.means, self.stds, self.weights))
        return weights.log() + _component_log_densities(x, means, stds.pow(2))

    def log_prob(self, x: Tensor) -> Tensor:
        """``log p(x)`` of shape (n,) for points ``x`` of shape (n, D)."""
        return torch.logsumexp(self._joint_log_prob(x), dim=1)

    def log_posterior(self, x: Tensor) -> Tensor:
        """``log P(k | x)`` of shape (n, K): the log-responsibility of each component."""
        joint = self._joint_log_prob(x)
        return joint - torch.logsumexp(joint, dim=1, keepdim=True)

    def assign(self, x: Tensor) -> Tensor:
        """The most probable component of each point, shape (n,)."""
        return self.log_posterior(x).argmax(dim=1)

    def mean(self) -> Tensor:
        """The mixture mean ``Σ_k π_k μ_k``, shape (D,)."""
        return self.weights @ self.means

    def covariance(self) -> Tensor:
        """The mixture covariance ``Σ_k π_k (s_k² I + μ_k μ_kᵀ) − m mᵀ``, shape (D, D)."""
        m = self.mean()
        second = (self.weights * self.stds.pow(2)).sum() * torch.eye(
            self.dim, dtype=m.dtype, device=m.device
        )
        second = second + (self.weights[:, None] * self.means).T @ self.means
        return second - torch.outer(m, m)


class MixtureVelocity(nn.Module):
    """The exact marginal velocity of the linear path from N(0, I) to a :class:`GaussianMixture`.

    ``forward(x, t, cond=None)`` returns ``v(x, t) = Σ_k γ_k(x, t)·v_k(x, t)`` (module
    docstring), a drop-in "trained" velocity field for samplers and inference-time scaling.
    ``x`` has shape (B, D) or (B, ...) with D elements per sample; ``t`` has shape (B,) with
    values in [0, 1]; ``cond`` is ignored. Computation is in ``x``'s dtype and device; the
    mixture's parameters are buffers, so ``.to(device)`` moves them.
    """

    means: Tensor
    variances: Tensor
    log_weights: Tensor

    def __init__(self, mixture: GaussianMixture) -> None:
        super().__init__()
        self.register_buffer("means", mixture.means.clone())
        self.register_buffer("variances", mixture.stds.pow(2).clone())
        self.register_buffer("log_weights", mixture.weights.log().clone())

    def _posterior_and_centred(self, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Responsibilities γ (B, K), offsets ``x − t·μ_k`` (B, K, D) and V_k(t) (B, K)."""
        flat = x.reshape(x.shape[0], -1)
        if t.ndim != 1 or t.shape[0] != x.shape[0] or flat.shape[1] != self.means.shape[1]:
            raise FlowError(
                f"MixtureVelocity: expected x of shape (B, {self.means.shape[1]}) and t of shape "
                f"(B,), got {tuple(x.shape)} and {tuple(t.shape)}"
            )
        means, variances = self.means.to(flat), self.variances.to(flat)
        tb = t.to(flat)[:, None]
        var_t = (1 - tb) ** 2 + tb**2 * variances  # (B, K)
        centres = tb[:, :, None] * means  # (B, K, D)
        joint = self.log_weights.to(flat) + _component_log_densities(flat, centres, var_t)
        gamma = torch.softmax(joint, dim=1)
        return gamma, flat.unsqueeze(1) - centres, var_t

    def forward(self, x: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        """The velocity ``v(x, t)``, with the shape of ``x``."""
        gamma, centred, var_t = self._posterior_and_centred(x, t)
        tb = t.to(x.dtype)[:, None]
        gain = (tb * self.variances.to(x.dtype) - (1 - tb)) / var_t  # (B, K)
        per_component = self.means.to(x.dtype) + gain[:, :, None] * centred
        return (gamma[:, :, None] * per_component).sum(1).reshape(x.shape)

    def score(self, x: Tensor, t: Tensor) -> Tensor:
        """The score ``∇_x log p_t(x) = −Σ_k γ_k (x − t·μ_k)/V_k(t)``, with the shape of ``x``."""
        gamma, centred, var_t = self._posterior_and_centred(x, t)
        return -((gamma / var_t)[:, :, None] * centred).sum(1).reshape(x.shape)
