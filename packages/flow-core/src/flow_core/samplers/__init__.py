"""Samplers: ``x1 = sampler.sample(model, x0, cond)``, reporting ``sampler.nfe``.

They integrate the flow ODE dx/dt = v_θ(x, t, c) from t = 0 (source) to t = 1 (data):
:class:`Euler`, :class:`Heun`, :class:`Midpoint` and :class:`RK4` on a uniform, shifted or
Bellman-optimal grid (:mod:`flow_core.samplers.grids`); :class:`AdaptiveODE` (and
:class:`Dopri5`) through torchdiffeq; :class:`FewStepAverageVelocity` for average-velocity
models; :class:`EulerMaruyama` for the marginal-preserving SDE; :class:`InverseSampler` for
invertible flows. :class:`ClassifierFreeGuidance` wraps a conditional velocity field, and
:func:`log_likelihood` evaluates log p_1 by the instantaneous change of variables.
"""

from flow_core.samplers.adaptive import ADAPTIVE_METHODS, AdaptiveODE, Dopri5
from flow_core.samplers.average import FewStepAverageVelocity
from flow_core.samplers.fixed_step import RK4, Euler, FixedStepSampler, Heun, Midpoint
from flow_core.samplers.grids import (
    bellman_time_grid,
    brute_force_grid,
    shifted_grid,
    uniform_grid,
)
from flow_core.samplers.guidance import ClassifierFreeGuidance
from flow_core.samplers.invertible import InverseSampler
from flow_core.samplers.likelihood import log_likelihood
from flow_core.samplers.sde import EulerMaruyama

__all__ = [
    "ADAPTIVE_METHODS",
    "RK4",
    "AdaptiveODE",
    "ClassifierFreeGuidance",
    "Dopri5",
    "Euler",
    "EulerMaruyama",
    "FewStepAverageVelocity",
    "FixedStepSampler",
    "Heun",
    "InverseSampler",
    "Midpoint",
    "bellman_time_grid",
    "brute_force_grid",
    "log_likelihood",
    "shifted_grid",
    "uniform_grid",
]
