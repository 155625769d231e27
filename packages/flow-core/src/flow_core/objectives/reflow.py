"""Rectified flow's reflow procedure and the 2-RF++ training recipe for a reflow round.

Liu, Gong & Liu 2022, "Flow Straight and Fast: Learning to Generate and Transfer Data with
Rectified Flow" (project convention already). A trained velocity field v_θ defines the map
x0 ↦ Φ_θ(x0), the solution at t = 1 of dx/dt = v_θ(x, t) from x(0) = x0. *Reflow* draws
x0 ~ N(0, I), generates the coupled pairs (x0, Φ_θ(x0)) and trains a new field on them with
the flow-matching loss on the linear path; the pairs keep both marginals, no convex
transport cost increases, and the new flow is straighter. k-RF means k − 1 reflows. The
*straightness* of a field along its own ODE trajectories X_t is

    S(v) = ∫_0^1 E‖(X1 − X0) − v(X_t, t)‖² dt,

zero exactly when every trajectory is a straight line, where one Euler step is exact.

A task runs k rounds with these pieces::

    model = train(...)                                   # 1-RF, e.g. objective "cfm"
    for _ in range(k - 1):
        pairs = generate_pairs(model, sampler, n, batch_size, (2,), generator)
        model = train(..., objective=ctx.build("objective", "cfm"),    # or "rf-pp"
                      next_batch=pair_batches(pairs, batch_size))
        straightness(model, x0_eval)

:class:`RectifiedFlowPlusPlus` is the loss of a reflow round in 2-RF++ (Lee, Lin & Fanti 2024,
"Improving the Training of Rectified Flows"), converted from its τ convention (noise at
τ = 1, weight 1 − τ, data estimate z_τ − τ·v^τ) to the project convention:

    L = t·H(v_θ(x_t, t) − (x1 − x0)) + P(x̂1, x1),   x̂1 = x_t + (1 − t)·v_θ(x_t, t),

with t from the U-shaped density p(t) ∝ cosh(4(t − ½)) (symmetric, so unchanged by the
conversion), H the pseudo-Huber loss with c = 0.00054·d, and P an optional perceptual loss
(LPIPS on images; none on low-dimensional data).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
from torch import Tensor, nn

from flow_core.errors import ConfigError, FlowError
from flow_core.objectives.common import check_probability, drop_condition, source_and_data
from flow_core.objectives.losses import check_loss, per_sample_loss
from flow_core.objectives.timesteps import TimeDensity
from flow_core.paths.affine import expand_time
from flow_core.protocols import Batch, Sampler

__all__ = ["RectifiedFlowPlusPlus", "generate_pairs", "pair_batches", "straightness"]

Perceptual = Callable[[Tensor, Tensor], Tensor]
"""A perceptual loss ``P(x̂1, x1)`` returning one value per sample, shape ``(B,)``."""


def _device_of(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def generate_pairs(
    model: nn.Module,
    sampler: Sampler,
    n: int,
    batch_size: int,
    dim_shape: int | tuple[int, ...],
    generator: torch.Generator,
    cond: Tensor | None = None,
) -> dict[str, Tensor]:
    """Reflow pairs ``{"x0": noise, "x1": sampler.sample(model, noise)}`` (plus ``"cond"``).

    Draws ``n`` samples x0 ~ N(0, I) of shape ``dim_shape`` from ``generator`` and pushes them
    through ``sampler`` in batches of ``batch_size`` without gradients, on the model's device.
    The result is on the CPU, ready for :func:`pair_batches`.

    Args:
        cond: optional conditions for the ``n`` samples, shape ``(n, ...)``; each batch gets
            its slice, and the result holds them as ``"cond"``.
    """
    if n < 1 or batch_size < 1:
        raise ConfigError(f"generate_pairs: n and batch_size must be >= 1, got {n}, {batch_size}")
    shape = (dim_shape,) if isinstance(dim_shape, int) else tuple(dim_shape)
    if cond is not None and cond.shape[0] != n:
        raise FlowError(f"generate_pairs: cond must have {n} rows, got {tuple(cond.shape)}")
    device = _device_of(model)
    sources, targets = [], []
    with torch.no_grad():
        for start in range(0, n, batch_size):
            size = min(batch_size, n - start)
            x0 = torch.randn((size, *shape), generator=generator, device=generator.device)
            part = None if cond is None else cond[start : start + size].to(device)
            x1 = sampler.sample(model, x0.to(device), part)
            sources.append(x0.cpu())
            targets.append(x1.cpu())
    pairs = {"x0": torch.cat(sources), "x1": torch.cat(targets)}
    if cond is not None:
        pairs["cond"] = cond.cpu()
    return pairs


def pair_batches(
    pairs: dict[str, Tensor], batch_size: int
) -> Callable[[torch.Generator], dict[str, Tensor]]:
    """A ``next_batch(generator)`` for :func:`flow_core.training.train` over stored pairs.

    Each call draws ``batch_size`` rows uniformly with replacement from every tensor in
    ``pairs`` (the same rows for all keys).
    """
    sizes = {key: value.shape[0] for key, value in pairs.items()}
    if not sizes or len(set(sizes.values())) != 1:
        raise FlowError(f"pair_batches: tensors need the same number of rows, got {sizes}")
    n = next(iter(sizes.values()))

    def next_batch(generator: torch.Generator) -> dict[str, Tensor]:
        rows = torch.randint(n, (batch_size,), generator=generator, device=generator.device)
        return {key: value[rows.to(value.device)] for key, value in pairs.items()}

    return next_batch


def straightness(
    model: nn.Module, x0: Tensor, steps: int = 100, cond: Tensor | None = None
) -> float:
    """S = ∫_0^1 E‖(X1 − X0) − v(X_t, t)‖² dt along the model's own Euler trajectories.

    The integral is the Euler-grid sum Σ_k Δt·mean_i ‖(X1 − X0)_i − v(X_{t_k}, t_k)_i‖²,
    ‖·‖² summed over each sample's elements, with X the ``steps``-step Euler solve from
    ``x0``; no gradients are taken.
    """
    if steps < 1:
        raise ConfigError(f"straightness: steps must be >= 1, got {steps}")
    dt = 1.0 / steps
    velocities = []
    x = x0
    with torch.no_grad():
        for k in range(steps):
            t = torch.full((x0.shape[0],), k * dt, dtype=x0.dtype, device=x0.device)
            v = model(x, t, cond)
            velocities.append(v)
            x = x + dt * v
        chord = x - x0
        total = sum(
            (chord - v).reshape(x0.shape[0], -1).square().sum(dim=1).mean() for v in velocities
        )
    return float(total) * dt


class RectifiedFlowPlusPlus:
    """The 2-RF++ loss of a reflow round on pairs ``batch["x0"]``, ``batch["x1"]``.

    Without ``"x0"`` in the batch it draws independent noise (then it is a 1-RF loss with the
    2-RF++ recipe). ``metrics`` holds ``"loss"``, ``"regression"`` (the time-weighted Huber
    term) and, with a perceptual loss, ``"perceptual"``.

    Args:
        time_density: time density spec; 2-RF++ uses ``"u-shaped"`` (a = 4).
        loss: ``"pseudo-huber"`` (2-RF++) or ``"squared"``.
        time_weight: weight the regression term by t (2-RF++), else by 1.
        perceptual: optional ``P(x̂1, x1)`` per sample, e.g. LPIPS for images.
        cond_dropout: probability of replacing a sample's condition by the null condition.
    """

    model_kind: ClassVar[str] = "velocity"
    name: ClassVar[str] = "rf-pp"

    def __init__(
        self,
        time_density: str = "u-shaped",
        loss: str = "pseudo-huber",
        time_weight: bool = True,
        perceptual: Perceptual | None = None,
        cond_dropout: float = 0.0,
    ) -> None:
        self.time_density = TimeDensity.parse(time_density)
        self.loss = check_loss(loss, self.name)
        self.time_weight = bool(time_weight)
        if perceptual is not None and not callable(perceptual):
            raise ConfigError(f"rf-pp: perceptual must be callable or None, got {perceptual!r}")
        self.perceptual = perceptual
        self.cond_dropout = check_probability(cond_dropout, "cond_dropout", self.name)

    def __call__(self, model: nn.Module, batch: Batch) -> tuple[Tensor, dict[str, float]]:
        x0, x1 = source_and_data(batch, self.name)
        n = x1.shape[0]
        t = self.time_density(n, device=x1.device, dtype=x1.dtype)
        tb = expand_time(t, x1)
        x_t = (1 - tb) * x0 + tb * x1
        cond = drop_condition(model, batch.get("cond"), self.cond_dropout, self.name)
        v = model(x_t, t, cond)
        regression = per_sample_loss(self.loss, v - (x1 - x0))
        if self.time_weight:
            regression = t * regression
        per_sample = regression
        metrics: dict[str, float] = {"regression": regression.detach().mean().item()}
        if self.perceptual is not None:
            perceptual = self.perceptual(x_t + (1 - tb) * v, x1)
            if perceptual.shape != (n,):
                raise FlowError(
                    f"rf-pp: the perceptual loss must return shape ({n},), got "
                    f"{tuple(perceptual.shape)}"
                )
            per_sample = per_sample + perceptual
            metrics["perceptual"] = perceptual.detach().mean().item()
        loss = per_sample.mean()
        return loss, {"loss": loss.item(), **metrics}
