"""Samplers: ``x1 = sampler.sample(model, x0, cond)``, reporting ``sampler.nfe``.

They integrate the flow ODE dx/dt = v_θ(x, t, c) from t = 0 (source) to t = 1 (data):
:class:`Euler` on a fixed grid, :class:`Dopri5` adaptively through torchdiffeq.
"""

from flow_core.samplers.adaptive import Dopri5
from flow_core.samplers.fixed_step import Euler

__all__ = ["Dopri5", "Euler"]
