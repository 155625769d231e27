"""Adaptive ODE sampling with the Dormand–Prince 5(4) method (through torchdiffeq).

Dormand & Prince 1980, "A family of embedded Runge–Kutta formulae"; used for flow-matching
sampling by Lipman et al. 2023 and Tong et al. 2023. Solves dx/dt = v_θ(x, t, c) from the
source x(0) = x0 to the data x(1) (project convention), choosing step sizes so that the
embedded error estimate stays below ``atol + rtol·|x|``.

torchdiffeq measures that error as an RMS over the whole batch tensor, so individual samples
can be less accurate than the tolerances suggest.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchdiffeq import odeint

from flow_core.errors import ConfigError

__all__ = ["Dopri5"]


class Dopri5:
    """Adaptive Dormand–Prince 5(4) from t = 0 to t = 1 with ``torchdiffeq.odeint``.

    ``nfe`` counts every evaluation of the model in the last call, including the ones the
    solver spends choosing its first step and on rejected steps. Each evaluation processes the
    whole batch, so this is also the number of evaluations per sample.

    Like :class:`flow_core.samplers.fixed_step.Euler`, the sampler runs in the caller's
    autograd mode (no ``torch.no_grad`` inside): use ``torch.no_grad()`` for plain sampling;
    with gradients enabled the solve is differentiated by direct backpropagation through the
    solver's steps.

    Args:
        rtol: relative tolerance (> 0).
        atol: absolute tolerance (> 0).
    """

    def __init__(self, rtol: float = 1e-5, atol: float = 1e-5) -> None:
        if not rtol > 0 or not atol > 0:
            raise ConfigError(f"dopri5: rtol and atol must be > 0, got rtol={rtol}, atol={atol}")
        self.rtol = float(rtol)
        self.atol = float(atol)
        self.nfe = 0

    def sample(self, model: nn.Module, x0: Tensor, cond: Tensor | None = None) -> Tensor:
        """Integrate ``dx/dt = model(x, t, cond)`` from ``x0`` at t = 0 to t = 1."""
        nfe = 0

        def velocity(t: Tensor, x: Tensor) -> Tensor:
            nonlocal nfe
            nfe += 1
            t_batch = t.to(dtype=x.dtype, device=x.device).expand(x.shape[0])
            v: Tensor = model(x, t_batch, cond)
            return v

        span = torch.tensor([0.0, 1.0], dtype=x0.dtype, device=x0.device)
        path = odeint(velocity, x0, span, rtol=self.rtol, atol=self.atol, method="dopri5")
        self.nfe = nfe
        x1: Tensor = path[-1]
        return x1
