"""Where in t a velocity field's trajectories bend: straightness and acceleration profiles.

A step grid can only beat the uniform grid at equal NFE where the error of a step depends on
*where* in [0, 1] it is taken, i.e. where the curvature of the trajectories is concentrated in
part of the time interval. This module measures that on a fine Euler solve of the model's own
ODE from noise (``FINE_STEPS`` uniform steps, the ODE's trajectories to within their
O(1/``FINE_STEPS``) error):

- **Straightness** (Liu, Gong & Liu 2022, "Flow Straight and Fast", arXiv 2209.03003):
  S = ∫_0^1 s(t) dt with s(t) = E‖(X1 − X0) − v(X_t, t)‖², the same quantity as
  ``flow_core.objectives.reflow.straightness``; reported also relative to E‖X1 − X0‖² and by
  bins of t (the share of S in each bin).
- **Acceleration** along the trajectories, a(t) = d/dt v(X_t, t) (finite differences of the
  velocity between consecutive fine steps), as the RMS m(t) = (E‖a(t)‖²)^{1/2}. Euler's local
  error over a step of size h at t is (h²/2)·a(t) + O(h³): this is what BOSS's jump cost
  C[i, j] = E‖x_i + (t_j − t_i)·v(x_i, t_i) − x_j‖² measures (Nguyen, Nguyen & Nguyen 2023,
  "Bellman Optimal Stepsize Straightening of Flow-Matching Models", arXiv 2312.16414), so m(t)
  is BOSS's own curvature estimate in the limit of small steps.

From the profile m(t) follow two first-order estimates of the best any K-step grid can do
against the uniform grid (both independent of K; 1 means no grid can gain). With step size
h(t) (step density 1/h, ∫dt/h = K), both are minimised by the same grid, h ∝ m^{−1/2}:

- on BOSS's objective, the summed squared local errors Σ_k (h_k²/2)²·m(t_k)² ≈ ¼∫h³m²dt:
  the ratio (∫m^{1/2}dt)⁴ / ∫m²dt;
- on the endpoint error, taking local errors to add up along a trajectory, ½∫h·m dt:
  the ratio (∫m^{1/2}dt)² / ∫m dt.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from torch import Tensor, nn

__all__ = ["FINE_STEPS", "Profile", "profile"]

FINE_STEPS = 1000
"""Uniform Euler steps of the fine solve along which the profiles are measured."""


@dataclass
class Profile:
    """Straightness and acceleration of one model's trajectories, overall and by bins of t."""

    straightness: float
    """S = ∫E‖(X1 − X0) − v(X_t, t)‖²dt."""
    chord: float
    """E‖X1 − X0‖², the scale S is relative to."""
    straightness_share: list[float]
    """Share of S in each of the equal bins of t."""
    acceleration_share: list[float]
    """Share of ∫m(t)dt (RMS acceleration) in each bin."""
    boss_ratio: float
    """(∫m^{1/2})⁴/∫m²: best grid against uniform on BOSS's summed local cost."""
    endpoint_ratio: float
    """(∫m^{1/2})²/∫m: best grid against uniform on the first-order endpoint error."""
    acceleration: Tensor
    """m(t) on the fine grid, one value per fine step."""

    @property
    def relative(self) -> float:
        """S / E‖X1 − X0‖²: 0 for straight lines at constant speed."""
        return self.straightness / self.chord

    def first_order_error(self, grid: Tensor) -> float:
        """½Σ_k h_k∫_{t_k}^{t_{k+1}} m(t)dt for the Euler ``grid``: its steps' local errors
        (h_k²/2)·m added up in size, as if each reached t = 1 unchanged."""
        steps = self.acceleration.numel()
        index = (grid.double() * steps).round().long().tolist()
        return 0.5 * sum(
            float(b - a) / steps * float(self.acceleration[a:b].sum()) / steps
            for a, b in itertools.pairwise(index)
        )


def _bin_shares(density: Tensor, bins: int) -> list[float]:
    """Shares of ``Σ density`` (one value per fine step, equal widths) in ``bins`` equal bins."""
    per_bin = density.reshape(bins, -1).sum(dim=1)
    return (per_bin / per_bin.sum()).tolist()


@torch.no_grad()
def profile(model: nn.Module, x0: Tensor, bins: int = 10, steps: int = FINE_STEPS) -> Profile:
    """The straightness and acceleration profile of ``model`` along its Euler trajectories.

    ``steps`` must be a multiple of ``bins``. The acceleration of fine step k is taken between
    the velocities at t_k and t_{k+1} (the last step reuses the previous one's).
    """
    if steps % bins:
        raise ValueError(f"steps ({steps}) must be a multiple of bins ({bins})")
    dt = 1.0 / steps
    x, velocities = x0, []
    for k in range(steps):
        t = torch.full((x0.shape[0],), k * dt, dtype=x0.dtype)
        velocities.append(model(x, t).reshape(x0.shape[0], -1))
        x = x + dt * velocities[-1].reshape(x.shape)
    v = torch.stack(velocities).double()  # (steps, B, D)
    chord = (x - x0).reshape(x0.shape[0], -1).double()
    s = (chord - v).square().sum(-1).mean(-1)  # s(t_k)
    acc = (v[1:] - v[:-1]) / dt
    m = acc.square().sum(-1).mean(-1).sqrt()
    m = torch.cat([m, m[-1:]])  # one value per fine step
    mean = lambda values: float(values.mean())  # noqa: E731  (∫_0^1 on the uniform fine grid)
    return Profile(
        straightness=mean(s),
        chord=float(chord.square().sum(-1).mean()),
        straightness_share=_bin_shares(s, bins),
        acceleration_share=_bin_shares(m, bins),
        boss_ratio=mean(m**0.5) ** 4 / mean(m**2),
        endpoint_ratio=mean(m**0.5) ** 2 / mean(m),
        acceleration=m,
    )
