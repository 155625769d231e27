"""Fixed-step ODE samplers: explicit Euler, Heun, midpoint and classical Runge–Kutta 4.

Sampling solves the flow ODE dx/dt = v_θ(x, t, c) forward from the source x(0) = x0 to the
data x(1) (project convention; Lipman et al. 2023, Liu et al. 2022) on a time grid
0 = t_0 < t_1 < … < t_K = 1, with h = t_{k+1} − t_k and k1 = v(x_k, t_k):

- Euler (order 1, 1 evaluation per step): x_{k+1} = x_k + h·k1.
- Heun / explicit trapezoid (order 2, 2 per step; Karras et al. 2022 use it as "EDM Heun"):
  k2 = v(x_k + h·k1, t_{k+1}), x_{k+1} = x_k + (h/2)·(k1 + k2).
- Midpoint (order 2, 2 per step): k2 = v(x_k + (h/2)·k1, t_k + h/2), x_{k+1} = x_k + h·k2.
- RK4 (order 4, 4 per step; Kutta 1901): k2 = v(x_k + (h/2)·k1, t_k + h/2),
  k3 = v(x_k + (h/2)·k2, t_k + h/2), k4 = v(x_k + h·k3, t_{k+1}),
  x_{k+1} = x_k + (h/6)·(k1 + 2·k2 + 2·k3 + k4).

The global error falls as h^order. On the linear path a perfectly straight flow (rectified
flow) is integrated exactly by one Euler step. The grid is uniform, SD3-shifted or
Bellman-optimal (BOSS); see :mod:`flow_core.samplers.grids`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import Tensor, nn

from flow_core.errors import ConfigError
from flow_core.paths.affine import expand_time
from flow_core.samplers.grids import (
    StepFn,
    bellman_time_grid,
    check_steps,
    euler_step,
    shifted_grid,
    uniform_grid,
    validate_time_grid,
)

__all__ = [
    "GRIDS",
    "RK4",
    "STEPS",
    "Euler",
    "FixedStepSampler",
    "Heun",
    "Midpoint",
    "heun_step",
    "midpoint_step",
    "rk4_step",
]

GRIDS: tuple[str, ...] = ("uniform", "shifted", "bellman")
"""The named time grids a fixed-step sampler accepts."""

_CALIBRATION_SAMPLES = 256


def heun_step(
    model: nn.Module, x: Tensor, t: Tensor, t_next: Tensor, velocity: Tensor, cond: Tensor | None
) -> Tensor:
    """One Heun (explicit trapezoid) step; ``velocity = model(x, t, cond)``."""
    h = expand_time(t_next - t, x)
    end_velocity: Tensor = model(x + h * velocity, t_next, cond)
    return x + 0.5 * h * (velocity + end_velocity)


def midpoint_step(
    model: nn.Module, x: Tensor, t: Tensor, t_next: Tensor, velocity: Tensor, cond: Tensor | None
) -> Tensor:
    """One explicit midpoint step; ``velocity = model(x, t, cond)``."""
    h = expand_time(t_next - t, x)
    middle: Tensor = model(x + 0.5 * h * velocity, t + 0.5 * (t_next - t), cond)
    return x + h * middle


def rk4_step(
    model: nn.Module, x: Tensor, t: Tensor, t_next: Tensor, velocity: Tensor, cond: Tensor | None
) -> Tensor:
    """One classical Runge–Kutta 4 step; ``velocity = model(x, t, cond)``."""
    h = expand_time(t_next - t, x)
    t_mid = t + 0.5 * (t_next - t)
    k2: Tensor = model(x + 0.5 * h * velocity, t_mid, cond)
    k3: Tensor = model(x + 0.5 * h * k2, t_mid, cond)
    k4: Tensor = model(x + h * k3, t_next, cond)
    return x + (h / 6) * (velocity + 2 * k2 + 2 * k3 + k4)


STEPS: dict[str, StepFn] = {
    "euler": euler_step,
    "heun": heun_step,
    "midpoint": midpoint_step,
    "rk4": rk4_step,
}
"""The one-step map ``step(model, x, t, t_next, velocity, cond)`` of each method."""


class FixedStepSampler:
    """A one-step map applied over a time grid; the base of :class:`Euler`, :class:`Heun`, ….

    The sampler runs in the caller's autograd mode and never enters ``torch.no_grad`` itself:
    call it under ``torch.no_grad()`` (or ``torch.inference_mode()``) for plain sampling; with
    gradients enabled the result is differentiable with respect to ``x0`` and the model's
    parameters. Times are passed to the model as tensors of shape ``(B,)`` in ``x0``'s dtype.
    ``nfe`` is ``evaluations_per_step × steps`` (every stage is evaluated on every step,
    including the last).

    Args:
        steps: number of steps (at least 1); by default 100 for Euler, 50 for Heun and
            midpoint, 25 for RK4 (100 network evaluations each).
        grid: ``"uniform"``, ``"shifted"`` (SD3 shift ``t′ = t/(s − (s − 1)t)`` with
            ``s = shift``) or ``"bellman"`` (BOSS). The Bellman grid depends on the model: it
            is computed on the first call to :meth:`sample`, from that call's model and the
            first 256 rows of its ``x0`` (and ``cond``) as calibration noise, using this
            sampler's own step as the cost's one-step map and ``reference_steps`` uniform
            steps as the reference, and then cached in :attr:`time_grid`. Make a new sampler
            (or set ``time_grid = None``) to recompute it for another model.
        shift: the SD3 shift ``s > 0`` of the ``"shifted"`` grid; ``s > 1`` takes smaller
            steps near the noise.
        time_grid: explicit increasing times ``t_0 < … < t_N`` to step through instead; they
            define the steps (``steps`` becomes ``N``) and cannot be combined with a ``grid``
            other than ``"uniform"``.
        reference_steps: size of the fine reference grid of the ``"bellman"`` grid (at least
            ``steps``).
    """

    name: ClassVar[str]
    evaluations_per_step: ClassVar[int]
    default_steps: ClassVar[int]
    model_kind: ClassVar[str] = "velocity"

    def __init__(
        self,
        steps: int | None = None,
        grid: str = "uniform",
        shift: float = 3.0,
        time_grid: Sequence[float] | Tensor | None = None,
        reference_steps: int = 64,
    ) -> None:
        if grid not in GRIDS:
            raise ConfigError(
                f"{self.name}: unknown grid {grid!r}; expected one of: {', '.join(GRIDS)}"
            )
        self.grid = grid
        self.reference_steps = check_steps(reference_steps, f"{self.name} reference")
        self.time_grid: Tensor | None
        if time_grid is not None:
            if grid != "uniform":
                raise ConfigError(f"{self.name}: give either time_grid or grid={grid!r}, not both")
            self.time_grid = validate_time_grid(time_grid, self.name)
            self.steps = self.time_grid.numel() - 1
        else:
            self.steps = check_steps(self.default_steps if steps is None else steps, self.name)
            if grid == "uniform":
                self.time_grid = uniform_grid(self.steps)
            elif grid == "shifted":
                try:
                    self.time_grid = shifted_grid(self.steps, shift)
                except ConfigError as error:
                    raise ConfigError(f"{self.name}: {error}") from None
            else:
                if self.steps > self.reference_steps:
                    raise ConfigError(
                        f"{self.name}: steps ({self.steps}) must not exceed reference_steps "
                        f"({self.reference_steps}) for the bellman grid"
                    )
                self.time_grid = None
        self.nfe = 0

    def sample(self, model: nn.Module, x0: Tensor, cond: Tensor | None = None) -> Tensor:
        """Integrate ``dx/dt = model(x, t, cond)`` over the grid, starting from ``x0``."""
        step = STEPS[self.name]
        if self.time_grid is None:
            n = _CALIBRATION_SAMPLES
            self.time_grid = bellman_time_grid(
                model,
                x0[:n].detach(),
                self.steps,
                self.reference_steps,
                None if cond is None else cond[:n],
                step,
            )
        x = x0
        batch = x0.shape[0]
        for t, t_next in itertools.pairwise(self.time_grid.tolist()):
            now = torch.full((batch,), t, dtype=x0.dtype, device=x0.device)
            later = torch.full((batch,), t_next, dtype=x0.dtype, device=x0.device)
            x = step(model, x, now, later, model(x, now, cond), cond)
        self.nfe = self.evaluations_per_step * self.steps
        return x


class Euler(FixedStepSampler):
    """Explicit Euler (order 1): ``nfe = steps``. See :class:`FixedStepSampler` for the args."""

    name = "euler"
    default_steps = 100
    evaluations_per_step = 1


class Heun(FixedStepSampler):
    """Heun's method (order 2): ``nfe = 2·steps``. See :class:`FixedStepSampler`."""

    name = "heun"
    default_steps = 50
    evaluations_per_step = 2


class Midpoint(FixedStepSampler):
    """The explicit midpoint method (order 2): ``nfe = 2·steps``. See :class:`FixedStepSampler`."""

    name = "midpoint"
    default_steps = 50
    evaluations_per_step = 2


class RK4(FixedStepSampler):
    """Classical Runge–Kutta 4 (order 4): ``nfe = 4·steps``. See :class:`FixedStepSampler`."""

    name = "rk4"
    default_steps = 25
    evaluations_per_step = 4
