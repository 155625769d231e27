"""MeanFlow: training an average-velocity field with the MeanFlow identity.

Geng, Deng, Bai, Kolter & He 2025, "Mean Flows for One-step Generative Modeling" (arXiv
2505.13447). The paper and its code use the τ convention (noise at τ = 1); everything here is
in the project convention (t = 0 noise x0, t = 1 data x1), converted with t = 1 − τ:
u(x, r, t) = −u^τ(x, 1 − t, 1 − r), and the paper's logit-normal(−0.4, 1) on τ is
logit-normal(+0.4, 1) on t.

For r ≤ t and the state x_r at the start time r (the noisier end), the average velocity is
u(x_r, r, t) = (t − r)⁻¹∫_r^t v(x_s, s) ds, so x_t = x_r + (t − r)·u(x_r, r, t) and
u(x, t, t) = v(x, t): one network evaluation jumps from x0 to x1 = x0 + u(x0, 0, 1).
Differentiating (t − r)·u = ∫_r^t v with respect to r along the trajectory gives the MeanFlow
identity

    u(x_r, r, t) = v(x_r, r) + (t − r)·(d/dr) u(x_r, r, t),   d/dr u = v·∂_x u + ∂_r u,

one Jacobian–vector product of u_θ at (x_r, r, t) with tangent (v, 1, 0), computed in
forward-mode AD in the same pass as u_θ itself. Training regresses
u_θ onto the stop-gradient target built from the conditional velocity v = x1 − x0 at
x_r = (1 − r)·x0 + r·x1:

    u_tgt = v + (t − r)·(v·∂_x u_θ + ∂_r u_θ),    L = w·‖u_θ(x_r, r, t) − sg(u_tgt)‖²,

with the adaptive weight w = 1/sg(‖Δ‖² + ε)^p, Δ = u_θ − u_tgt and ‖·‖² summed over the
sample's elements as in the reference code. The pair (r, t) is two draws of the time density,
sorted; a ``flow_ratio`` share of the batch sets r = t, where the target reduces to v (plain
flow matching).

Classifier-free guidance can be folded into the target (paper §4.2): the velocity in both the
target and the JVP tangent becomes, for samples that keep their condition c,

    ṽ = ω·(x1 − x0) + κ·sg u_θ(x_r, r, r | c) + (1 − ω − κ)·sg u_θ(x_r, r, r | ∅),

the network's own instantaneous velocity taken at the state's time r; at the fixed point this
is CFG with scale ω/(1 − κ). ω = 1, κ = 0 (the defaults) gives ṽ = v, i.e. no folding; the
paper's ImageNet setting is ω = 1, κ = 0.5, trained with ``cond_dropout`` > 0.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn
from torch.autograd import forward_ad

from flow_core.objectives.common import (
    check_adaptive_weight,
    check_probability,
    drop_condition,
    null_condition,
    source_and_data,
)
from flow_core.objectives.timesteps import TimeDensity
from flow_core.paths.affine import expand_time
from flow_core.protocols import Batch

__all__ = ["MeanFlow", "adaptive_weight", "mean_flow_target", "sample_interval"]


def sample_interval(
    density: TimeDensity, flow_ratio: float, n: int, *, device: torch.device, dtype: torch.dtype
) -> tuple[Tensor, Tensor]:
    """``(r, t)`` with r ≤ t: two sorted draws of ``density``; r = t on a ``flow_ratio`` share.

    The flow-matching share is chosen per sample at random (each sample independently with
    probability ``flow_ratio``).
    """
    a = density(n, device=device, dtype=dtype)
    b = density(n, device=device, dtype=dtype)
    r, t = torch.minimum(a, b), torch.maximum(a, b)
    same = torch.rand(n, device=device) < flow_ratio
    return torch.where(same, t, r), t


def adaptive_weight(squared: Tensor, power: float, eps: float) -> Tensor:
    """MeanFlow's adaptive loss weight 1/sg(‖Δ‖² + ε)^p per sample (1 when ``power = 0``)."""
    if power == 0:
        return torch.ones_like(squared)
    return (squared.detach() + eps).pow(-power)


def mean_flow_target(
    model: nn.Module,
    x_r: Tensor,
    r: Tensor,
    t: Tensor,
    v: Tensor,
    cond: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """``(u_θ(x_r, r, t), u_tgt)`` with u_tgt = v + (t − r)·(v·∂_x u_θ + ∂_r u_θ).

    One forward pass in forward-mode AD gives u and its derivative along the tangent
    (v, 1, 0) on (x_r, r, t). It uses dual tensors (:mod:`torch.autograd.forward_ad`), the
    engine behind :func:`torch.func.jvp`, because they also pass through a
    ``DistributedDataParallel`` wrapper (``torch.func.jvp`` fails inside DDP's forward).
    ``u`` stays differentiable in the parameters; ``u_tgt`` is detached.
    """
    with forward_ad.dual_level():
        x_dual = forward_ad.make_dual(x_r, v)  # type: ignore[no-untyped-call]
        r_dual = forward_ad.make_dual(r, torch.ones_like(r))  # type: ignore[no-untyped-call]
        out = model(x_dual, r_dual, t, cond)
        u, du_dr = forward_ad.unpack_dual(out)  # type: ignore[no-untyped-call]
    if du_dr is None:  # the output does not depend on x or r
        du_dr = torch.zeros_like(u)
    target = v + expand_time(t - r, v) * du_dr
    return u, target.detach()


class MeanFlow:
    """The MeanFlow objective for an average-velocity model ``u(x, r, t, cond)``.

    ``batch`` holds ``"x1"``, optionally ``"x0"`` (N(0, I) noise is drawn when absent) and
    ``"cond"``. ``metrics`` holds ``"loss"`` (the weighted loss that is minimised; with
    adaptive weighting it stays near 1 until ‖Δ‖² falls below ε) and ``"mse"``, the mean
    squared error per element against the target, the number to watch.

    Args:
        flow_ratio: share of samples with r = t (flow matching), in [0, 1].
        time_density: density of the two time draws (see
            :mod:`flow_core.objectives.timesteps`); the paper's logit-normal(−0.4, 1) on τ
            is ``"logit-normal:mean=0.4,std=1.0"`` on t.
        adaptive_power: p of the adaptive weight 1/sg(‖Δ‖² + ε)^p (0 turns it off).
        eps: ε of the adaptive weight (> 0).
        cond_dropout: probability of replacing a sample's condition by the null condition.
        cfg_omega, cfg_kappa: ω and κ of the guidance folded into the target; the defaults
            (1, 0) fold nothing.
    """

    model_kind: ClassVar[str] = "average-velocity"
    name: ClassVar[str] = "meanflow"

    def __init__(
        self,
        flow_ratio: float = 0.75,
        time_density: str = "logit-normal:mean=0.4,std=1.0",
        adaptive_power: float = 1.0,
        eps: float = 0.01,
        cond_dropout: float = 0.0,
        cfg_omega: float = 1.0,
        cfg_kappa: float = 0.0,
    ) -> None:
        self.flow_ratio = check_probability(flow_ratio, "flow_ratio", self.name)
        self.time_density = TimeDensity.parse(time_density)
        self.adaptive_power, self.eps = check_adaptive_weight(adaptive_power, eps, self.name)
        self.cond_dropout = check_probability(cond_dropout, "cond_dropout", self.name)
        self.cfg_omega = float(cfg_omega)
        self.cfg_kappa = check_probability(cfg_kappa, "cfg_kappa", self.name)

    def __call__(self, model: nn.Module, batch: Batch) -> tuple[Tensor, dict[str, float]]:
        x0, x1 = source_and_data(batch, self.name)
        r, t = sample_interval(
            self.time_density, self.flow_ratio, x1.shape[0], device=x1.device, dtype=x1.dtype
        )
        x_r = (1 - expand_time(r, x1)) * x0 + expand_time(r, x1) * x1
        cond = drop_condition(model, batch.get("cond"), self.cond_dropout, self.name)
        v = self.guided_velocity(model, x_r, r, x1 - x0, cond)
        u, target = mean_flow_target(model, x_r, r, t, v, cond)
        squared = (u - target).reshape(u.shape[0], -1).square().sum(dim=1)
        loss = (adaptive_weight(squared, self.adaptive_power, self.eps) * squared).mean()
        mse = squared.detach().mean().item() / max(u[0].numel(), 1)
        return loss, {"loss": loss.item(), "mse": mse}

    def guided_velocity(
        self, model: nn.Module, x_r: Tensor, r: Tensor, v: Tensor, cond: Tensor | None
    ) -> Tensor:
        """ṽ of the folded guidance for samples that keep a condition; ``v`` elsewhere."""
        if cond is None or (self.cfg_omega == 1.0 and self.cfg_kappa == 0.0):
            return v
        null = null_condition(model, cond, self.name)
        with torch.no_grad():
            v_cond = model(x_r, r, r, cond)
            v_null = model(x_r, r, r, null)
        guided = (
            self.cfg_omega * v
            + self.cfg_kappa * v_cond
            + (1 - self.cfg_omega - self.cfg_kappa) * v_null
        )
        keeps = (cond != null).reshape(cond.shape[0], -1).any(dim=1)
        return torch.where(expand_time(keeps, v), guided, v)
