"""Affine probability paths x_t = α_t·x1 + σ_t·x0 and conversions between predictions.

Project convention: t = 0 is the source x0 ~ N(0, I), t = 1 the data x1, and a schedule
(α_t, σ_t) normally has α_0 = 0, σ_0 = 1, α_1 = 1, σ_1 = 0 (the variance-exploding schedule
is the exception, see :class:`VESchedule`). The conditional velocity is

    dx_t/dt = α̇_t·x1 + σ̇_t·x0.

A network may predict the velocity v, the data x̂1, the noise x̂0 or the score s = ∇ log p_t of
the marginal. All four are affine in one another at a fixed (x_t, t) (Lai, Song, Kim,
Mitsufuji & Ermon 2025, "The Principles of Diffusion Models", arXiv 2510.21890; Lipman et al.
2024, "Flow Matching Guide and Code", §4.8). With D_t = α_t·σ̇_t − α̇_t·σ_t:

    x̂1 = (σ̇·x_t − σ·v)/D          v = α̇·x̂1 + σ̇·x̂0
    x̂0 = (α·v − α̇·x_t)/D          x̂1 = (x_t − σ·x̂0)/α,   x̂0 = (x_t − α·x̂1)/σ
    s  = −x̂0/σ = (α̇·x_t − α·v)/(σ·D)

(the score formula holds for the Gaussian source, where E[x0 | x_t] = −σ_t·∇ log p_t(x_t)).
Each conversion divides by α_t, σ_t or D_t, so some are undefined at an endpoint: on the
linear path the data → velocity map divides by σ_1 = 0 and noise → velocity by α_0 = 0.

Schedules, in the project convention:

- linear / rectified flow / conditional OT (Liu et al. 2022; Lipman et al. 2023):
  α = t, σ = 1 − t;
- cosine / variance preserving (Nichol & Dhariwal 2021 in the flow form of Albergo &
  Vanden-Eijnden 2023): α = sin(πt/2), σ = cos(πt/2), so α² + σ² = 1;
- polynomial (Lipman et al. 2024, "polynomial convex" scheduler): α = t^p, σ = 1 − t^p;
- variance exploding (Song et al. 2021, SMLD/VE SDE): α = 1 and σ falls geometrically from
  σ_max to σ_min.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from flow_core.errors import ConfigError, FlowError

__all__ = [
    "PREDICTION_KINDS",
    "SCHEDULES",
    "AffinePath",
    "CosineSchedule",
    "LinearSchedule",
    "PolynomialSchedule",
    "Schedule",
    "VESchedule",
    "expand_time",
    "get_schedule",
]

PREDICTION_KINDS: tuple[str, ...] = ("velocity", "data", "noise", "score")
"""What a network may predict: the velocity v, the data x̂1, the noise x̂0 or the score s."""


def expand_time(t: Tensor, like: Tensor) -> Tensor:
    """Reshape per-sample times ``t`` of shape ``(B,)`` to broadcast against ``like``.

    Returns a view of shape ``(B, 1, ..., 1)`` with ``like.ndim`` dimensions.

    Raises:
        FlowError: ``t`` is not one-dimensional or its length differs from ``like``'s batch.
    """
    if t.ndim != 1 or like.ndim < 1 or t.shape[0] != like.shape[0]:
        raise FlowError(
            f"time must have shape (B,) matching the batch of a tensor of shape "
            f"{tuple(like.shape)}; got shape {tuple(t.shape)}"
        )
    return t.reshape(t.shape[0], *([1] * (like.ndim - 1)))


@runtime_checkable
class Schedule(Protocol):
    """The coefficients of x_t = α_t·x1 + σ_t·x0 and their time derivatives.

    Each method maps a tensor of times elementwise to a tensor of the same shape and dtype.
    """

    def alpha(self, t: Tensor) -> Tensor: ...

    def sigma(self, t: Tensor) -> Tensor: ...

    def d_alpha(self, t: Tensor) -> Tensor: ...

    def d_sigma(self, t: Tensor) -> Tensor: ...


@dataclass(frozen=True)
class LinearSchedule:
    """α_t = t, σ_t = 1 − t: rectified flow and the conditional-OT path (straight lines)."""

    def alpha(self, t: Tensor) -> Tensor:
        return t

    def sigma(self, t: Tensor) -> Tensor:
        return 1 - t

    def d_alpha(self, t: Tensor) -> Tensor:
        return torch.ones_like(t)

    def d_sigma(self, t: Tensor) -> Tensor:
        return -torch.ones_like(t)


@dataclass(frozen=True)
class CosineSchedule:
    """α_t = sin(πt/2), σ_t = cos(πt/2): the variance-preserving (VP) cosine path."""

    def alpha(self, t: Tensor) -> Tensor:
        return torch.sin(0.5 * math.pi * t)

    def sigma(self, t: Tensor) -> Tensor:
        return torch.cos(0.5 * math.pi * t)

    def d_alpha(self, t: Tensor) -> Tensor:
        return 0.5 * math.pi * torch.cos(0.5 * math.pi * t)

    def d_sigma(self, t: Tensor) -> Tensor:
        return -0.5 * math.pi * torch.sin(0.5 * math.pi * t)


@dataclass(frozen=True)
class PolynomialSchedule:
    """α_t = t^p, σ_t = 1 − t^p with p > 0 (p = 1 is the linear schedule).

    For p > 1 the path lingers near the source: D_t = −p·t^(p−1) vanishes at t = 0, so the
    velocity → data and velocity → noise conversions are undefined there.
    """

    power: float = 2.0

    def __post_init__(self) -> None:
        if not self.power > 0 or not math.isfinite(self.power):
            raise ConfigError(
                f"polynomial schedule: power must be finite and > 0, got {self.power}"
            )

    def alpha(self, t: Tensor) -> Tensor:
        return t**self.power

    def sigma(self, t: Tensor) -> Tensor:
        return 1 - t**self.power

    def d_alpha(self, t: Tensor) -> Tensor:
        return self.power * t ** (self.power - 1)

    def d_sigma(self, t: Tensor) -> Tensor:
        return -self.power * t ** (self.power - 1)


@dataclass(frozen=True)
class VESchedule:
    """Variance exploding (Song et al. 2021): α_t = 1, σ_t = σ_min·(σ_max/σ_min)^(1−t).

    Song et al.'s VE SDE has σ(τ) = σ_min·(σ_max/σ_min)^τ with the noise at τ = 1; here
    t = 1 − τ. Two of the usual boundary conditions do not hold: α_0 = 1 ≠ 0, so the path
    starts at x1 + σ_max·x0 and the source is taken to be N(0, σ_max²·I) (start an ODE
    sampler from ``sigma_max * torch.randn(...)``, which ignores the data's own spread against
    σ_max), and σ_1 = σ_min ≠ 0, so the path ends at x1 + σ_min·x0 rather than at x1.
    σ̇_t = −log(σ_max/σ_min)·σ_t.
    """

    sigma_max: float = 80.0
    sigma_min: float = 0.002

    def __post_init__(self) -> None:
        if not 0 < self.sigma_min < self.sigma_max < math.inf:
            raise ConfigError(
                "ve schedule: need 0 < sigma_min < sigma_max < inf, got "
                f"sigma_min={self.sigma_min}, sigma_max={self.sigma_max}"
            )

    @property
    def _log_ratio(self) -> float:
        return math.log(self.sigma_max / self.sigma_min)

    def alpha(self, t: Tensor) -> Tensor:
        return torch.ones_like(t)

    def sigma(self, t: Tensor) -> Tensor:
        return self.sigma_min * torch.exp(self._log_ratio * (1 - t))

    def d_alpha(self, t: Tensor) -> Tensor:
        return torch.zeros_like(t)

    def d_sigma(self, t: Tensor) -> Tensor:
        return -self._log_ratio * self.sigma(t)


SCHEDULES: dict[str, Callable[[], Schedule]] = {
    "linear": LinearSchedule,
    "cosine": CosineSchedule,
    "polynomial": PolynomialSchedule,
    "ve": VESchedule,
}
"""Schedule constructors by name (each builds its default schedule)."""


def get_schedule(name: str) -> Schedule:
    """The default schedule called ``name`` (one of :data:`SCHEDULES`).

    Raises:
        ConfigError: ``name`` is not a known schedule.
    """
    if name not in SCHEDULES:
        raise ConfigError(f"unknown schedule {name!r}; expected one of: {', '.join(SCHEDULES)}")
    return SCHEDULES[name]()


class AffinePath:
    """The path x_t = α_t·x1 + σ_t·x0 of a schedule, and conversions among predictions.

    Every method takes times ``t`` of shape ``(B,)`` and batch-first tensors; ``t`` is
    broadcast over the remaining dimensions. The conversions take a prediction at
    ``(x_t, t)`` and return another kind of prediction there; they are exact algebra (no
    clamping), so they return inf or nan where the formula divides by zero (see the module
    docstring).

    On the cosine (VP) schedule, the velocity of a true pair names its noise exactly, and a
    conversion there and back returns the prediction it started from:

    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> path = AffinePath("cosine")
    >>> x0, x1, t = torch.randn(4, 3), torch.randn(4, 3), torch.rand(4) * 0.8 + 0.1
    >>> x_t, v = path.interpolate(x0, x1, t), path.target_velocity(x0, x1, t)
    >>> torch.allclose(path.convert(v, x_t, t, "velocity", "noise"), x0, atol=1e-5)
    True
    >>> score = path.convert(v, x_t, t, "velocity", "score")
    >>> torch.allclose(path.convert(score, x_t, t, "score", "velocity"), v, atol=1e-4)
    True

    Args:
        schedule: a :class:`Schedule` or the name of one in :data:`SCHEDULES`.
    """

    def __init__(self, schedule: Schedule | str = "linear") -> None:
        self.schedule: Schedule = get_schedule(schedule) if isinstance(schedule, str) else schedule

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.schedule!r})"

    def coefficients(self, t: Tensor, like: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(α_t, σ_t, α̇_t, σ̇_t)``, each shaped to broadcast against ``like``."""
        tb = expand_time(t, like)
        s = self.schedule
        return s.alpha(tb), s.sigma(tb), s.d_alpha(tb), s.d_sigma(tb)

    def interpolate(self, x0: Tensor, x1: Tensor, t: Tensor) -> Tensor:
        """The point ``x_t = α_t·x1 + σ_t·x0`` between source ``x0`` and data ``x1``."""
        alpha, sigma, _, _ = self.coefficients(t, x1)
        return alpha * x1 + sigma * x0

    def target_velocity(self, x0: Tensor, x1: Tensor, t: Tensor) -> Tensor:
        """The conditional velocity ``dx_t/dt = α̇_t·x1 + σ̇_t·x0``."""
        _, _, d_alpha, d_sigma = self.coefficients(t, x1)
        return d_alpha * x1 + d_sigma * x0

    def velocity_to_data(self, v: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        """``x̂1 = (σ̇·x_t − σ·v)/(α·σ̇ − α̇·σ)``."""
        alpha, sigma, d_alpha, d_sigma = self.coefficients(t, x_t)
        return (d_sigma * x_t - sigma * v) / (alpha * d_sigma - d_alpha * sigma)

    def velocity_to_noise(self, v: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        """``x̂0 = (α·v − α̇·x_t)/(α·σ̇ − α̇·σ)``."""
        alpha, sigma, d_alpha, d_sigma = self.coefficients(t, x_t)
        return (alpha * v - d_alpha * x_t) / (alpha * d_sigma - d_alpha * sigma)

    def velocity_to_score(self, v: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        """``s = −x̂0/σ = (α̇·x_t − α·v)/(σ·(α·σ̇ − α̇·σ))``."""
        alpha, sigma, d_alpha, d_sigma = self.coefficients(t, x_t)
        return (d_alpha * x_t - alpha * v) / (sigma * (alpha * d_sigma - d_alpha * sigma))

    def data_to_velocity(self, x1_hat: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        """``v = α̇·x̂1 + σ̇·x̂0`` with ``x̂0 = (x_t − α·x̂1)/σ``."""
        alpha, sigma, d_alpha, d_sigma = self.coefficients(t, x_t)
        return d_alpha * x1_hat + d_sigma * (x_t - alpha * x1_hat) / sigma

    def noise_to_velocity(self, x0_hat: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        """``v = α̇·x̂1 + σ̇·x̂0`` with ``x̂1 = (x_t − σ·x̂0)/α``."""
        alpha, sigma, d_alpha, d_sigma = self.coefficients(t, x_t)
        return d_alpha * (x_t - sigma * x0_hat) / alpha + d_sigma * x0_hat

    def score_to_velocity(self, score: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        """The velocity of the noise prediction ``x̂0 = −σ·s``."""
        _, sigma, _, _ = self.coefficients(t, x_t)
        return self.noise_to_velocity(-sigma * score, x_t, t)

    def convert(
        self, prediction: Tensor, x_t: Tensor, t: Tensor, source: str, target: str
    ) -> Tensor:
        """Convert a ``source`` prediction at ``(x_t, t)`` to a ``target`` prediction.

        Kinds are :data:`PREDICTION_KINDS`; the conversion passes through the velocity.

        Raises:
            ConfigError: ``source`` or ``target`` is not a known kind.
        """
        for kind in (source, target):
            if kind not in PREDICTION_KINDS:
                raise ConfigError(
                    f"unknown prediction kind {kind!r}; expected one of: "
                    f"{', '.join(PREDICTION_KINDS)}"
                )
        if source == target:
            return prediction
        velocity = prediction
        if source != "velocity":
            to_velocity = {
                "data": self.data_to_velocity,
                "noise": self.noise_to_velocity,
                "score": self.score_to_velocity,
            }
            velocity = to_velocity[source](prediction, x_t, t)
        if target == "velocity":
            return velocity
        from_velocity = {
            "data": self.velocity_to_data,
            "noise": self.velocity_to_noise,
            "score": self.velocity_to_score,
        }
        return from_velocity[target](velocity, x_t, t)
