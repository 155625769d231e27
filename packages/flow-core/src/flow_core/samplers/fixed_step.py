"""Fixed-step ODE sampling with the explicit Euler method.

Sampling solves the flow ODE dx/dt = v_θ(x, t, c) forward from the source x(0) = x0 to the
data x(1) (project convention, Lipman et al. 2023; Liu et al. 2022). On a time grid
0 = t_0 < t_1 < … < t_N = 1 the Euler step is

    x_{k+1} = x_k + (t_{k+1} − t_k)·v_θ(x_k, t_k, c),

first-order accurate: the global error falls in proportion to the step size. On the linear
path a perfectly straight flow (rectified flow) is integrated exactly by a single step.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from flow_core.errors import ConfigError

__all__ = ["Euler"]


class Euler:
    """Explicit Euler from t = 0 to t = 1; ``nfe`` equals the number of steps.

    The sampler runs in the caller's autograd mode and never enters ``torch.no_grad`` itself:
    call it under ``torch.no_grad()`` (or ``torch.inference_mode()``) for plain sampling; with
    gradients enabled the result is differentiable with respect to ``x0`` and the model's
    parameters, at a memory cost that grows with the number of steps. The time grid is built
    without gradients, so nothing else enters the graph.

    Args:
        steps: number of uniform steps on [0, 1] (at least 1).
        time_grid: optional increasing times ``t_0 < … < t_N`` to step through instead of the
            uniform grid; when given it defines the steps and ``steps`` is set to ``N``.
    """

    def __init__(self, steps: int = 100, time_grid: Sequence[float] | Tensor | None = None) -> None:
        if time_grid is None:
            if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
                raise ConfigError(f"euler: steps must be an integer >= 1, got {steps!r}")
            grid = torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64)
        else:
            grid = torch.as_tensor(time_grid, dtype=torch.float64).detach().cpu()
            increasing = grid.ndim == 1 and bool(torch.all(grid[1:] > grid[:-1]))
            if not increasing or grid.numel() < 2 or not bool(grid.isfinite().all()):
                raise ConfigError(
                    "euler: time_grid must be a 1-D strictly increasing sequence of at least "
                    f"2 finite times, got {grid.tolist()}"
                )
        self.time_grid = grid
        self.steps = grid.numel() - 1
        self.nfe = 0

    def sample(self, model: nn.Module, x0: Tensor, cond: Tensor | None = None) -> Tensor:
        """Integrate ``dx/dt = model(x, t, cond)`` over the grid, starting from ``x0``."""
        times = self.time_grid.tolist()
        x = x0
        for t, t_next in itertools.pairwise(times):
            t_batch = torch.full((x0.shape[0],), t, dtype=x0.dtype, device=x0.device)
            x = x + (t_next - t) * model(x, t_batch, cond)
        self.nfe = self.steps
        return x
