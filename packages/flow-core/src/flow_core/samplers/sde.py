"""Stochastic sampling of a flow: the marginal-preserving SDE, by Euler–Maruyama.

Kim, Yoon, Hwang & Sung 2025, "Inference-Time Scaling for Flow Models via Stochastic Generation and
Rollover Budget Forcing" (arXiv 2503.19385); the identity is Song et al. 2021 (probability-flow ODE
and its family of SDEs). In the project convention (t = 0 noise x0 ~ N(0, I), t = 1 data) on the
affine path x_t = α_t·x1 + σ_t·x0 with velocity v(x, t), the SDE

    dx = [v(x, t) + ½·g(t)²·s(x, t)] dt + g(t)·dW_t,     t: 0 → 1,

has the same marginals p_t as the ODE dx/dt = v for every diffusion coefficient g(t) ≥ 0. The score
comes from the velocity (Lai, Song, Kim, Mitsufuji & Ermon 2025, "The Principles of Diffusion
Models", arXiv 2510.21890):

    s(x, t) = (α̇_t·x − α_t·v)/(σ_t·(α_t·σ̇_t − α̇_t·σ_t)),   linear path: s = (t·v − x)/(1 − t).

(The τ-convention original, dz = [v^τ − ½g²s]dτ + g·dw̄ with τ: 1 → 0, is the same SDE: v = −v^τ,
dt = −dτ, and the score is unchanged.)

**Discretisation.** On the uniform grid t_k = k/N, Euler–Maruyama takes

    x_{k+1} = x_k + h·[v + ½·g_k²·s] + g_k·√h·ξ_k,    ξ_k ~ N(0, I),  h = 1/N,

with every quantity evaluated at (x_k, t_k), so the score is needed only for t_k ≤ 1 − h where
σ_{t_k} > 0. The last step (t_{N−1} → 1) is a deterministic Euler step: noise injected there
could not be removed before t = 1 (where σ_1 = 0). On the linear path that step lands exactly on
the Tweedie estimate x̂1 = x + (1 − t)·v.

**Stability.** Near the data end the score term pulls x towards the data at a rate of about
½g²/σ_t², so the explicit step diverges once ½·g²·h/σ_t² is of order one. The sampler therefore
uses g_k = min(g(t_k), σ_{t_k}/√h): the noise one step injects never exceeds the path's own
noise level. The capped coefficient is itself a valid g(t) ≥ 0 (one that depends on the
step), so the marginals are still preserved. For the released coefficient with scale 3 (below)
the cap never binds on the linear and cosine paths when h ≤ 1/9; a constant g is capped on the
last stretch 1 − t < g·√h of the linear path.

**Diffusion coefficients** (``diffusion``):

- ``"released"``: g(t) = scale·(1 − t)², the released code's g = 3τ² (scale 3) with τ = 1 − t
  (Kim et al. 2025): large near the noise, vanishing at the data where it also cancels the
  1/(1 − t) of the score;
- ``"constant"``: g(t) = scale;
- ``"zero"``: g = 0, which is exactly the Euler ODE sampler.

The schedule's own time is used, so on the VP (cosine) path of RBF the coefficient is
scale·(1 − s)² in that path's time s.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor, nn

from flow_core.errors import ConfigError, FlowError
from flow_core.paths.affine import AffinePath, expand_time

__all__ = ["DIFFUSIONS", "EulerMaruyama"]

DIFFUSIONS: tuple[str, ...] = ("released", "constant", "zero")
"""The diffusion coefficients :class:`EulerMaruyama` accepts."""


class EulerMaruyama:
    """Euler–Maruyama for the marginal-preserving SDE of a velocity field, t: 0 → 1.

    ``nfe`` equals ``steps`` (one velocity evaluation per step; the score reuses it). Like the
    ODE samplers it runs in the caller's autograd mode.

    Noise is drawn from, in order of precedence, the ``generator`` argument of
    :meth:`sample`, the ``generator`` attribute (a CPU generator seeded with
    ``generator_seed`` at construction, so a run is reproducible), or torch's global
    generator. Noise is drawn on the generator's device and moved to the sample's.

    The building blocks :meth:`time`, :meth:`step` and :meth:`data_estimate` let search
    methods (particle sampling, RBF) advance and score particles one step at a time.

    Args:
        steps: number of uniform steps N (at least 1).
        diffusion: one of :data:`DIFFUSIONS` (module docstring).
        scale: the coefficient's scale (finite, >= 0); unused by ``"zero"``.
        path: the schedule of the path the velocity field was trained on, by name (one of
            :data:`flow_core.paths.affine.SCHEDULES`, e.g. ``"linear"`` or ``"cosine"``). The
            score formula needs σ_t ≠ 0 and α_t·σ̇_t − α̇_t·σ_t ≠ 0 at every grid time t_k < 1
            when g > 0; a path where this fails (e.g. ``"polynomial"`` at t = 0) gives
            non-finite samples.
        generator_seed: seed for the sampler's own generator; ``None`` uses the global one.
    """

    model_kind: ClassVar[str] = "velocity"

    def __init__(
        self,
        steps: int = 100,
        diffusion: str = "released",
        scale: float = 3.0,
        path: str = "linear",
        generator_seed: int | None = None,
    ) -> None:
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ConfigError(f"euler-maruyama: steps must be an integer >= 1, got {steps!r}")
        if diffusion not in DIFFUSIONS:
            raise ConfigError(
                f"euler-maruyama: unknown diffusion {diffusion!r}; expected one of: "
                f"{', '.join(DIFFUSIONS)}"
            )
        if not (math.isfinite(scale) and scale >= 0):
            raise ConfigError(f"euler-maruyama: scale must be finite and >= 0, got {scale!r}")
        self.steps = steps
        self.diffusion = diffusion
        self.scale = float(scale)
        self.path = AffinePath(path)
        self.time_grid = torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64)
        self.generator: torch.Generator | None = (
            None if generator_seed is None else torch.Generator().manual_seed(generator_seed)
        )
        self.nfe = 0

    def diffusion_coefficient(self, t: float) -> float:
        """The diffusion coefficient g(t) before the stability cap."""
        if self.diffusion == "released":
            return self.scale * (1.0 - t) ** 2
        if self.diffusion == "constant":
            return self.scale
        return 0.0

    def time(self, index: int, like: Tensor) -> Tensor:
        """The grid time t_index as a tensor of shape (B,) in ``like``'s dtype and device."""
        return torch.full(
            (like.shape[0],), float(self.time_grid[index]), dtype=like.dtype, device=like.device
        )

    def data_estimate(self, x: Tensor, v: Tensor, index: int) -> Tensor:
        """The Tweedie estimate x̂1 = (σ̇·x − σ·v)/(α·σ̇ − α̇·σ) at grid time t_index.

        On the linear path this is x + (1 − t)·v. It reuses the velocity ``v`` already
        computed at (x, t_index), so scoring a particle costs no extra network evaluation.
        """
        return self.path.velocity_to_data(v, x, self.time(index, x))

    def step(
        self, x: Tensor, v: Tensor, index: int, generator: torch.Generator | None = None
    ) -> Tensor:
        """Advance ``x`` from t_index to t_index+1, given the velocity ``v`` at (x, t_index).

        The last step (index N − 1) is deterministic (module docstring).
        """
        if not 0 <= index < self.steps:
            raise FlowError(
                f"euler-maruyama: step index must lie in [0, {self.steps}), got {index}"
            )
        t = float(self.time_grid[index])
        h = float(self.time_grid[index + 1]) - t
        now = self.time(index, x)
        dt = expand_time(self.time(index + 1, x) - now, x)
        # the Euler sampler's arithmetic, so that g = 0 reproduces it bit for bit
        euler = x + dt * v
        g = 0.0 if index == self.steps - 1 else self.diffusion_coefficient(t)
        if g == 0.0:
            return euler
        sigma = float(self.path.schedule.sigma(self.time_grid[index : index + 1])[0])
        g = min(g, abs(sigma) / math.sqrt(h))
        score = self.path.velocity_to_score(v, x, now)
        gen = generator if generator is not None else self.generator
        noise = torch.randn(
            x.shape, generator=gen, dtype=x.dtype, device=x.device if gen is None else gen.device
        ).to(x.device)
        return euler + dt * (0.5 * g**2) * score + g * math.sqrt(h) * noise

    def sample(
        self,
        model: nn.Module,
        x0: Tensor,
        cond: Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Integrate the SDE from ``x0`` at t = 0 to t = 1 and return the sample at t = 1."""
        x = x0
        for index in range(self.steps):
            v: Tensor = model(x, self.time(index, x), cond)
            x = self.step(x, v, index, generator)
        self.nfe = self.steps
        return x
