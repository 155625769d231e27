"""SplitMeanFlow: average velocities from interval splitting, without a JVP.

Guo et al. 2025, "SplitMeanFlow: Interval Splitting Consistency in Few-Step Generative
Modeling" (arXiv 2507.16884). The paper uses the τ convention (noise at τ = 1); below is the
project convention (t = 0 noise, t = 1 data), converted with t = 1 − τ exactly as for MeanFlow
(:mod:`flow_core.objectives.meanflow`), with u(x_r, r, t) the average velocity over [r, t]
from the state x_r at the start time r.

The flow map x ↦ x + (t − r)·u(x, r, t) is a semigroup, so for r ≤ s ≤ t

    (t − r)·u(x_r, r, t) = (s − r)·u(x_r, r, s) + (t − s)·u(x_s, s, t),
    x_s = x_r + (s − r)·u(x_r, r, s).

With λ ~ U(0, 1) and s = (1 − λ)·r + λ·t the weights are the sub-intervals' shares,
λ = (s − r)/(t − r) and 1 − λ = (t − s)/(t − r), and the self-consistency target is

    u_tgt = λ·sg u_θ(x_r, r, s) + (1 − λ)·sg u_θ(x_s, s, t),  x_s = x_r + (s − r)·sg u_θ(x_r, r, s),

regressed by ‖u_θ(x_r, r, t) − u_tgt‖² at x_r = (1 − r)·x0 + r·x1. On the ``flow_ratio``
share with r = t the target is the conditional velocity x1 − x0 (flow matching), which anchors
u(x, t, t) = v(x, t). The two target evaluations run without gradients and the trained
evaluation is an ordinary forward pass, so a step costs three forward passes and one backward
and needs less memory than MeanFlow's JVP. MeanFlow's identity is the limit s → r.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from flow_core.objectives.common import (
    check_adaptive_weight,
    check_probability,
    drop_condition,
    source_and_data,
)
from flow_core.objectives.meanflow import adaptive_weight, sample_interval
from flow_core.objectives.timesteps import TimeDensity
from flow_core.paths.affine import expand_time
from flow_core.protocols import Batch

__all__ = ["SplitMeanFlow", "split_target"]


def split_target(
    model: nn.Module,
    x_r: Tensor,
    r: Tensor,
    t: Tensor,
    lam: Tensor,
    cond: Tensor | None = None,
) -> Tensor:
    """The interval-splitting target λ·u(x_r, r, s) + (1 − λ)·u(x_s, s, t), without gradients.

    ``s = (1 − λ)·r + λ·t`` splits [r, t] at the fraction ``lam`` (shape ``(B,)``), and
    ``x_s = x_r + (s − r)·u(x_r, r, s)``.
    """
    with torch.no_grad():
        s = (1 - lam) * r + lam * t
        first = model(x_r, r, s, cond)
        x_s = x_r + expand_time(s - r, x_r) * first
        second = model(x_s, s, t, cond)
        share = expand_time(lam, x_r)
        target: Tensor = share * first + (1 - share) * second
    return target


class SplitMeanFlow:
    """The SplitMeanFlow objective for an average-velocity model ``u(x, r, t, cond)``.

    ``batch`` holds ``"x1"``, optionally ``"x0"`` and ``"cond"``. ``metrics`` holds ``"loss"``
    and ``"mse"`` (mean squared error per element against the target).

    Args:
        flow_ratio: share of samples with r = t (flow matching), in [0, 1].
        time_density: density of the two sorted time draws (see
            :mod:`flow_core.objectives.timesteps`).
        adaptive_power: p of the adaptive weight 1/sg(‖Δ‖² + ε)^p (0, the default, turns it
            off).
        eps: ε of the adaptive weight (> 0).
        cond_dropout: probability of replacing a sample's condition by the null condition.
    """

    model_kind: ClassVar[str] = "average-velocity"
    name: ClassVar[str] = "split-meanflow"

    def __init__(
        self,
        flow_ratio: float = 0.75,
        time_density: str = "logit-normal:mean=0.4,std=1.0",
        adaptive_power: float = 0.0,
        eps: float = 0.01,
        cond_dropout: float = 0.0,
    ) -> None:
        self.flow_ratio = check_probability(flow_ratio, "flow_ratio", self.name)
        self.time_density = TimeDensity.parse(time_density)
        self.adaptive_power, self.eps = check_adaptive_weight(adaptive_power, eps, self.name)
        self.cond_dropout = check_probability(cond_dropout, "cond_dropout", self.name)

    def __call__(self, model: nn.Module, batch: Batch) -> tuple[Tensor, dict[str, float]]:
        x0, x1 = source_and_data(batch, self.name)
        n = x1.shape[0]
        r, t = sample_interval(
            self.time_density, self.flow_ratio, n, device=x1.device, dtype=x1.dtype
        )
        lam = torch.rand(n, device=x1.device, dtype=x1.dtype)
        x_r = (1 - expand_time(r, x1)) * x0 + expand_time(r, x1) * x1
        cond = drop_condition(model, batch.get("cond"), self.cond_dropout, self.name)
        target = split_target(model, x_r, r, t, lam, cond)
        target = torch.where(expand_time(r == t, x1), x1 - x0, target)
        u = model(x_r, r, t, cond)
        squared = (u - target).reshape(n, -1).square().sum(dim=1)
        loss = (adaptive_weight(squared, self.adaptive_power, self.eps) * squared).mean()
        mse = squared.detach().mean().item() / max(u[0].numel(), 1)
        return loss, {"loss": loss.item(), "mse": mse}
