"""Adaptive ODE sampling through torchdiffeq's embedded Runge–Kutta pairs.

Solves dx/dt = v_θ(x, t, c) from the source x(0) = x0 to the data x(1) (project convention;
Lipman et al. 2023 and Tong et al. 2023 sample this way), choosing step sizes so that the
embedded error estimate stays below ``atol + rtol·|x|``. Methods (Chen 2018, torchdiffeq):

- ``dopri5``: Dormand & Prince 1980, order 5(4) — the usual default;
- ``dopri8``: Dormand–Prince 8(7) (Prince & Dormand 1981), for tight tolerances;
- ``bosh3``: Bogacki & Shampine 1989, order 3(2);
- ``fehlberg2``: Runge–Kutta–Fehlberg 2(1);
- ``adaptive_heun``: Heun's method with an Euler error estimate, order 2(1).

torchdiffeq measures the error as an RMS over the whole batch tensor, so individual samples
can be less accurate than the tolerances suggest.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn
from torchdiffeq import odeint

from flow_core.errors import ConfigError

__all__ = ["ADAPTIVE_METHODS", "AdaptiveODE", "Dopri5", "check_adaptive_method"]

ADAPTIVE_METHODS: tuple[str, ...] = ("dopri5", "dopri8", "bosh3", "fehlberg2", "adaptive_heun")
"""The torchdiffeq adaptive methods accepted (``adaptive-heun`` is read as ``adaptive_heun``)."""


def check_adaptive_method(method: str, owner: str) -> str:
    """The torchdiffeq name of ``method``, or :class:`ConfigError` naming ``owner``."""
    name = method.replace("-", "_") if isinstance(method, str) else method
    if name not in ADAPTIVE_METHODS:
        raise ConfigError(
            f"{owner}: unknown adaptive method {method!r}; expected one of: "
            f"{', '.join(ADAPTIVE_METHODS)}"
        )
    return name


def _check_tolerances(owner: str, rtol: float, atol: float) -> None:
    if not rtol > 0 or not atol > 0:
        raise ConfigError(f"{owner}: rtol and atol must be > 0, got rtol={rtol}, atol={atol}")


class AdaptiveODE:
    """Adaptive integration from t = 0 to t = 1 with ``torchdiffeq.odeint``.

    ``nfe`` counts every evaluation of the model in the last call, including the ones the
    solver spends choosing its first step and on rejected steps. Each evaluation processes the
    whole batch, so this is also the number of evaluations per sample.

    The sampler runs in the caller's autograd mode (no ``torch.no_grad`` inside): use
    ``torch.no_grad()`` for plain sampling; with gradients enabled the solve is differentiated
    by direct backpropagation through the solver's steps.

    Args:
        method: one of :data:`ADAPTIVE_METHODS`.
        rtol: relative tolerance (> 0).
        atol: absolute tolerance (> 0).
    """

    model_kind: ClassVar[str] = "velocity"

    def __init__(self, method: str = "dopri5", rtol: float = 1e-5, atol: float = 1e-5) -> None:
        self.method = check_adaptive_method(method, "adaptive")
        _check_tolerances(self.method, rtol, atol)
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
        path = odeint(velocity, x0, span, rtol=self.rtol, atol=self.atol, method=self.method)
        self.nfe = nfe
        x1: Tensor = path[-1]
        return x1


class Dopri5(AdaptiveODE):
    """Adaptive Dormand–Prince 5(4): :class:`AdaptiveODE` with ``method="dopri5"``.

    Args:
        rtol: relative tolerance (> 0).
        atol: absolute tolerance (> 0).
    """

    def __init__(self, rtol: float = 1e-5, atol: float = 1e-5) -> None:
        super().__init__("dopri5", rtol, atol)
