"""FlowTurbo's refiner objective: regress a frozen predictor's velocity one step ahead.

Zhao et al. 2024, "FlowTurbo: Towards Real-time Flow-Based Image Generation with Velocity
Refiner" (§3.2; project convention, t = 0 noise, t = 1 data, as in the paper's SiT code). With
a frozen teacher (the velocity predictor) v_θ, a data batch x1, noise x0 ~ N(0, I) and one
step Δ ~ U(0, Δ_max) per batch (Δ_max = 0.12 in the paper):

    x_t = (1 − t)·x0 + t·x1,                 v = v_θ(x_t, t, c),
    x′  = x_t + Δ·v,                          (one Euler step of the teacher)
    L(φ) = E ‖v + r_φ(x′, t + Δ, v, c) − v_θ(x′, t + Δ, c)‖²,

so the refiner learns how the teacher's velocity changes over one step. Both teacher calls run
without gradients; only r_φ is trained. Classifier-free guidance: each label is replaced by the
null label with probability ``cond_dropout`` (0.1 in the paper), for teacher and refiner alike.

The times stay inside [0, 1]: instead of clamping t + Δ (which would pile the refiner's
training times up at 1), the refiner's input time t′ = t + Δ is drawn uniformly on
[max(lo, Δ), hi] and t = t′ − Δ, with [lo, hi] = [0, 1] by default — that is t ~ U(0, 1 − Δ),
every pair (t, t + Δ) valid and the input times t′ uniform. ``prepare(teacher, time_grid)``
may narrow [lo, hi] to the span of the sampler's refiner phase (e.g.
:attr:`flow_images.flowturbo.sampler.FlowTurboSampler.refiner_grid`), so the refiner spends
its capacity where it is used.

Protocol for a task: build the objective (``ctx.build("objective", "flowturbo-refiner")``),
call ``objective.prepare(teacher)`` once (it keeps a frozen copy), then train a
:class:`~flow_images.flowturbo.model.VelocityRefiner` with it; each batch holds ``"x1"`` and
optionally ``"x0"`` and ``"cond"``. ``metrics`` holds ``"loss"``, ``"reuse_loss"`` (the loss of
reusing v unchanged, i.e. of a zero refiner, on the same batch) and ``"delta"``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import Tensor, nn

from flow_core.errors import ConfigError, FlowError
from flow_core.gpu import unwrap
from flow_core.objectives import check_probability, drop_condition, source_and_data
from flow_core.protocols import Batch

__all__ = ["RefinerObjective"]


class RefinerObjective:
    """Train a velocity refiner r_φ against a frozen teacher (see the module docstring).

    Args:
        max_delta: Δ_max, the largest step; Δ ~ U(0, Δ_max), drawn once per batch. It should
            cover the sampler's step size 1/(number of steps) (1/9 for the default schedule).
        cond_dropout: probability of replacing a label by the null label.
    """

    model_kind: ClassVar[str] = "velocity"
    name: ClassVar[str] = "flowturbo-refiner"

    def __init__(self, max_delta: float = 0.12, cond_dropout: float = 0.1) -> None:
        if not 0.0 < max_delta < 1.0:
            raise ConfigError(f"{self.name}: max_delta must lie in (0, 1), got {max_delta}")
        self.max_delta = float(max_delta)
        self.cond_dropout = check_probability(cond_dropout, "cond_dropout", self.name)
        self.teacher: nn.Module | None = None
        self.span = (0.0, 1.0)

    def prepare(
        self, teacher: nn.Module, time_grid: Sequence[float] | Tensor | None = None
    ) -> None:
        """Keep a frozen copy of ``teacher``; optionally narrow the training times.

        Args:
            teacher: the velocity predictor v_θ(x, t, cond) the refiner will serve.
            time_grid: times whose span [min, max] bounds the refiner's input time t + Δ
                (``None``: [0, 1]); the span must reach above ``max_delta``.

        Raises:
            ConfigError: ``time_grid`` is empty, not finite, leaves [0, 1], or ends at or
                below ``max_delta``.
        """
        if time_grid is not None:
            grid = torch.as_tensor(time_grid, dtype=torch.float64).detach().cpu().flatten()
            if grid.numel() < 2 or not bool(grid.isfinite().all()):
                raise ConfigError(
                    f"{self.name}: time_grid must hold at least 2 finite times, got {grid.tolist()}"
                )
            lo, hi = grid.min().item(), grid.max().item()
            if lo < 0.0 or hi > 1.0 or hi <= self.max_delta or hi <= lo:
                raise ConfigError(
                    f"{self.name}: time_grid must span an interval inside [0, 1] ending above "
                    f"max_delta={self.max_delta}, got [{lo}, {hi}]"
                )
            self.span = (lo, hi)
        frozen = copy.deepcopy(unwrap(teacher)).eval()
        self.teacher = frozen.requires_grad_(False)

    def __call__(self, model: nn.Module, batch: Batch) -> tuple[Tensor, dict[str, float]]:
        if self.teacher is None:
            raise FlowError(
                f"{self.name}: call objective.prepare(teacher) with the frozen velocity "
                "predictor before training"
            )
        x0, x1 = source_and_data(batch, self.name)
        cond = drop_condition(model, batch.get("cond"), self.cond_dropout, self.name)
        n = x1.shape[0]
        delta = self.max_delta * torch.rand(()).item()
        lo, hi = self.span
        start = max(lo, delta)
        later = start + (hi - start) * torch.rand(n, device=x1.device, dtype=x1.dtype)
        t = later - delta
        t_b = t.reshape(n, *([1] * (x1.ndim - 1)))
        x_t = (1 - t_b) * x0 + t_b * x1
        self.teacher.to(x1.device)
        with torch.no_grad():
            velocity = self.teacher(x_t, t, cond)
            x_next = x_t + delta * velocity
            target = self.teacher(x_next, later, cond)
        loss = (velocity + model(x_next, later, velocity, cond) - target).square().mean()
        reuse = (velocity - target).square().mean()
        return loss, {"loss": loss.item(), "reuse_loss": reuse.item(), "delta": delta}
