"""Few-step sampling with an average-velocity (flow-map) model.

Geng et al. 2025, "Mean Flows for One-step Generative Modeling" (MeanFlow), and Guo et al.
2025, "SplitMeanFlow". An average-velocity model u(x, r, t) approximates
(t − r)⁻¹ ∫_r^t v(x_s, s) ds along the flow through x = x_r, so the flow map is
Ψ_{r→t}(x) = x + (t − r)·u(x, r, t) (Lai et al. 2025). On a grid 0 = t_0 < … < t_K = 1:

    x_{t_{k+1}} = x_{t_k} + (t_{k+1} − t_k)·u(x_{t_k}, t_k, t_{k+1}).

One step (K = 1) is x1 = x0 + u(x0, 0, 1). MeanFlow is published with noise at τ = 1; here
r ≤ t and x is the state at r (the noisier end), in the project convention: a τ-convention
network u^τ(z, r^τ, τ) is adapted as u(x, r, t) = −u^τ(x, 1 − t, 1 − r).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import Tensor, nn

from flow_core.samplers.grids import check_steps, uniform_grid, validate_time_grid

__all__ = ["FewStepAverageVelocity"]


class FewStepAverageVelocity:
    """Jumps ``x ← x + (t_{k+1} − t_k)·u(x, t_k, t_{k+1})`` over a grid; ``nfe = steps``.

    The model is called as ``model(x, r, t, cond)`` with ``r`` and ``t`` tensors of shape
    ``(B,)`` in ``x0``'s dtype. Runs in the caller's autograd mode (use ``torch.no_grad()`` for
    plain sampling).

    Args:
        steps: number of uniform jumps on [0, 1] (at least 1).
        time_grid: optional increasing times to jump through instead; when given it defines
            the jumps and ``steps`` becomes their number.
    """

    model_kind: ClassVar[str] = "average-velocity"

    def __init__(self, steps: int = 1, time_grid: Sequence[float] | Tensor | None = None) -> None:
        if time_grid is None:
            self.time_grid = uniform_grid(check_steps(steps, "average-velocity sampler"))
        else:
            self.time_grid = validate_time_grid(time_grid, "average-velocity sampler")
        self.steps = self.time_grid.numel() - 1
        self.nfe = 0

    def sample(self, model: nn.Module, x0: Tensor, cond: Tensor | None = None) -> Tensor:
        """Transport ``x0`` from t = t_0 to t = t_K with one model call per jump."""
        x = x0
        batch = x0.shape[0]
        for r, t in itertools.pairwise(self.time_grid.tolist()):
            start = torch.full((batch,), r, dtype=x0.dtype, device=x0.device)
            end = torch.full((batch,), t, dtype=x0.dtype, device=x0.device)
            x = x + (t - r) * model(x, start, end, cond)
        self.nfe = self.steps
        return x
