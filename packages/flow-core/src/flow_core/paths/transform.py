"""Re-express a trained velocity field on another affine schedule, without retraining.

Kim et al. 2025, "Inference-Time Scaling for Flow Models via Stochastic Generation and
Rollover Budget Forcing", §3.2 (interpolant conversion), and Lipman et al. 2024, "Flow Matching
Guide and Code", §4.8 (scheduler change), in the project convention (t = 0 noise, t = 1 data;
the paper's τ = 1 − t).

A model v(x, t) trained on the source path x_t = α_t·x1 + σ_t·x0 also describes every other
affine path x̄_s = ᾱ_s·x1 + σ̄_s·x0: the two have the same marginals up to a rescaling once
their signal-to-noise ratios agree. Find t(s) with

    α_{t(s)}/σ_{t(s)} = ᾱ_s/σ̄_s,        c_s = σ̄_s/σ_{t(s)} = ᾱ_s/α_{t(s)},

so that x̄_s = c_s·x_{t(s)} in distribution (and for every coupled pair). Differentiating,
the velocity of the target path is

    ū(x̄, s) = (ċ_s/c_s)·x̄ + c_s·ṫ(s)·v(x̄/c_s, t(s)),         dots = d/ds.

t(s) is closed-form when the source is linear (t = ᾱ/(ᾱ + σ̄)) and found by bisection
otherwise. The derivatives come from the schedules' own by implicit differentiation: with
N_t = α̇_t·σ_t − α_t·σ̇_t (the SNR's numerator, positive on an increasing SNR),

    ṫ(s) = N̄_s/(N_{t(s)}·c_s²),     ċ_s/c_s = σ̄'_s/σ̄_s − σ̇_{t(s)}·ṫ(s)/σ_{t(s)}

(or the same with α in place of σ where the SNR exceeds 1, which keeps every quotient finite
at both ends). When both schedules meet the usual boundary conditions, c_0 = c_1 = 1: the
transformed ODE starts from the same x0 and ends at the same x1 as the original one, and only
the time parametrisation and the scale of the intermediate states differ.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from flow_core.errors import ConfigError
from flow_core.paths.affine import AffinePath, LinearSchedule, Schedule, expand_time

__all__ = ["ScheduleTransformedVelocity", "to_vp"]

_BISECTION_STEPS = 60
_SNR_LIMIT = 1e12  # a signal-to-noise ratio beyond this (or below its inverse) counts as ∞ (0)


def _as_path(path: AffinePath | str) -> AffinePath:
    return AffinePath(path) if isinstance(path, str) else path


def _snr_range(schedule: Schedule) -> tuple[float, float]:
    ends = torch.tensor([0.0, 1.0], dtype=torch.float64)
    low, high = (schedule.alpha(ends) / schedule.sigma(ends)).tolist()
    return (0.0 if low < 1 / _SNR_LIMIT else low), (math.inf if high > _SNR_LIMIT else high)


class ScheduleTransformedVelocity(nn.Module):
    """The velocity field of the ``target`` path built from a ``model`` of the ``source`` path.

    Called as ``field(x, s, cond=None)`` with ``x`` a state of the target path at times ``s``
    of shape ``(B,)``; ``cond`` is passed to ``model`` unchanged. The coefficients are
    computed in float64 (float32 on MPS, which has no float64) and cast to ``x``'s dtype.

    Args:
        model: a velocity field ``model(x, t, cond)`` trained on ``source``.
        source: the path ``model`` was trained on (an :class:`AffinePath` or schedule name).
        target: the path to sample on.

    Raises:
        ConfigError: the source's signal-to-noise range does not cover the target's, so some
            target times have no matching source time (e.g. a variance-exploding source, whose
            SNR stays within [1/σ_max, 1/σ_min], with a linear target, whose SNR spans
            [0, ∞]).
    """

    def __init__(
        self, model: nn.Module, source: AffinePath | str, target: AffinePath | str
    ) -> None:
        super().__init__()
        self.model = model
        self.source = _as_path(source)
        self.target = _as_path(target)
        src_lo, src_hi = _snr_range(self.source.schedule)
        tgt_lo, tgt_hi = _snr_range(self.target.schedule)
        if src_lo > tgt_lo * (1 + 1e-9) or src_hi < tgt_hi * (1 - 1e-9):
            raise ConfigError(
                f"cannot transform {self.source!r} to {self.target!r}: the source's "
                f"signal-to-noise ratio spans [{src_lo:.4g}, {src_hi:.4g}], which does not cover "
                f"the target's [{tgt_lo:.4g}, {tgt_hi:.4g}]"
            )

    def source_time(self, s: Tensor) -> Tensor:
        """t(s): the source time whose signal-to-noise ratio equals the target's at ``s``."""
        tgt = self.target.schedule
        a_bar, s_bar = tgt.alpha(s), tgt.sigma(s)
        src = self.source.schedule
        if isinstance(src, LinearSchedule):
            return a_bar / (a_bar + s_bar)
        # α_t·σ̄ − σ_t·ᾱ has the sign of SNR_src(t) − SNR_tgt(s), which increases with t.
        lo, hi = torch.zeros_like(s), torch.ones_like(s)
        for _ in range(_BISECTION_STEPS):
            mid = 0.5 * (lo + hi)
            below = src.alpha(mid) * s_bar < src.sigma(mid) * a_bar
            lo = torch.where(below, mid, lo)
            hi = torch.where(below, hi, mid)
        return 0.5 * (lo + hi)

    def coefficients(self, s: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(t(s), ṫ(s), c_s, ċ_s/c_s)`` at target times ``s`` of shape ``(B,)``."""
        src, tgt = self.source.schedule, self.target.schedule
        t = self.source_time(s)
        a_bar, s_bar, da_bar, ds_bar = tgt.alpha(s), tgt.sigma(s), tgt.d_alpha(s), tgt.d_sigma(s)
        a, sig, da, ds = src.alpha(t), src.sigma(t), src.d_alpha(t), src.d_sigma(t)
        noisy = a_bar <= s_bar
        c = torch.where(noisy, s_bar / sig, a_bar / a)
        dt = (da_bar * s_bar - a_bar * ds_bar) / ((da * sig - a * ds) * c**2)
        dlog_c = torch.where(noisy, ds_bar / s_bar - ds * dt / sig, da_bar / a_bar - da * dt / a)
        return t, dt, c, dlog_c

    def forward(self, x: Tensor, s: Tensor, cond: Tensor | None = None) -> Tensor:
        expand_time(s, x)  # validates the shape of s
        dtype = torch.float32 if x.device.type == "mps" else torch.float64
        t, dt, c, dlog_c = (k.to(x.dtype) for k in self.coefficients(s.detach().to(dtype)))
        c, dt, dlog_c = (expand_time(k, x) for k in (c, dt, dlog_c))
        velocity: Tensor = self.model(x / c, t, cond)
        return dlog_c * x + c * dt * velocity


def to_vp(model: nn.Module, source: AffinePath | str = "linear") -> ScheduleTransformedVelocity:
    """``model`` (trained on ``source``, linear by default) as a velocity on the cosine VP path.

    This is the conversion Kim et al. 2025 apply before stochastic sampling: ᾱ_s = sin(πs/2),
    σ̄_s = cos(πs/2); from the linear path t(s) = ᾱ_s/(ᾱ_s + σ̄_s) and c_s = ᾱ_s + σ̄_s.
    """
    return ScheduleTransformedVelocity(model, source, "cosine")
