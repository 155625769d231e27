"""BOSS straightening: fine-tune a velocity field for a few-step time grid.

Nguyen et al. 2023, "Bellman Optimal Stepsize Straightening of Flow-Matching Models"
(arXiv 2312.16414); its code builds on rectified flow and already uses the project convention
(t = 0 noise, t = 1 data). Given a K-step grid 0 = t_0 < t_1 < … < t_K = 1 (BOSS picks it by
dynamic programming over a fine Euler grid, but any grid works here) and reference
trajectories of a frozen teacher v_φ from x_{t_0} = x0 ~ N(0, I), the student is trained so
that each step's velocity is the chord of the reference trajectory over that step:

    v_θ(x_{t_k}, t_k) = (x_{t_{k+1}} − x_{t_k}) / (t_{k+1} − t_k),
    L(θ) = E_{x0, k ~ U{0..K−1}} ℓ(v_θ(x_{t_k}, t_k) − (x_{t_{k+1}} − x_{t_k})/(t_{k+1} − t_k)),

after which K Euler steps of v_θ on the grid follow the teacher's fine trajectory.

Reference trajectories are Euler solves of the teacher on a fine uniform grid of
``reference_steps`` steps per unit time (the paper's K_max = 100), refined so that every grid
time is a node (:func:`reference_states`).

Protocol for a task:

1. build the objective (``ctx.build("objective", "boss", ...)``), then call
   ``objective.prepare(teacher, time_grid)`` once before training; it keeps a frozen copy of
   the teacher, so the student may start as the teacher itself;
2. each batch holds ``"x0"`` (source noise; drawn like ``"x1"`` when only ``"x1"`` is given)
   and optionally ``"cond"``; it may also hold ``"trajectory"``, the reference states at the
   grid times, shape ``(B, K + 1, ...)`` from :func:`reference_states`, to reuse precomputed
   trajectories instead of solving the teacher on every step.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import Tensor, nn

from flow_core.errors import ConfigError, FlowError
from flow_core.gpu import unwrap
from flow_core.objectives.common import check_probability, drop_condition
from flow_core.objectives.losses import check_loss, per_sample_loss
from flow_core.protocols import Batch

__all__ = ["BossStraightening", "check_time_grid", "reference_states"]


def check_time_grid(time_grid: Sequence[float] | Tensor, where: str) -> Tensor:
    """The grid as a float64 CPU tensor; it must run strictly upwards from 0 to 1.

    Raises:
        ConfigError: the grid is not 1-D, has fewer than 2 times, or does not run from 0 to 1.
    """
    grid = torch.as_tensor(time_grid, dtype=torch.float64).detach().cpu()
    valid = (
        grid.ndim == 1
        and grid.numel() >= 2
        and bool(grid.isfinite().all())
        and bool((grid[1:] > grid[:-1]).all())
        and abs(grid[0].item()) < 1e-9
        and abs(grid[-1].item() - 1.0) < 1e-9
    )
    if not valid:
        raise ConfigError(
            f"{where}: time_grid must be a strictly increasing 1-D sequence from 0 to 1, "
            f"got {grid.tolist()}"
        )
    return grid


def reference_states(
    teacher: nn.Module,
    x0: Tensor,
    time_grid: Sequence[float] | Tensor,
    steps: int = 100,
    cond: Tensor | None = None,
) -> Tensor:
    """States of the teacher's Euler trajectory from ``x0`` at the grid times, no gradients.

    Each interval [t_k, t_{k+1}] is crossed in max(1, round(steps·(t_{k+1} − t_k))) equal Euler
    steps, so for a grid on the uniform 1/``steps`` lattice this is exactly the fine uniform
    Euler solve. Returns shape ``(B, K + 1, ...)`` with ``[:, 0] == x0``.
    """
    grid = check_time_grid(time_grid, "reference_states").tolist()
    if steps < 1:
        raise ConfigError(f"reference_states: steps must be >= 1, got {steps}")
    states = [x0]
    x = x0
    with torch.no_grad():
        for start, end in itertools.pairwise(grid):
            count = max(1, round(steps * (end - start)))
            for i in range(count):
                time = start + (end - start) * i / count
                t = torch.full((x.shape[0],), time, dtype=x.dtype, device=x.device)
                x = x + (end - start) / count * teacher(x, t, cond)
            states.append(x)
    return torch.stack(states, dim=1)


class BossStraightening:
    """Fine-tune a velocity model onto the chords of a teacher's trajectories (BOSS).

    See the module docstring for the protocol (``prepare(teacher, time_grid)`` first).
    ``metrics`` holds ``"loss"``.

    Args:
        reference_steps: Euler steps per unit time of the teacher's reference solve.
        loss: ``"squared"`` or ``"pseudo-huber"`` (see :mod:`flow_core.objectives.losses`).
        cond_dropout: probability of replacing a sample's condition by the null condition
            (for teacher and student alike).
    """

    model_kind: ClassVar[str] = "velocity"
    name: ClassVar[str] = "boss"

    def __init__(
        self, reference_steps: int = 100, loss: str = "squared", cond_dropout: float = 0.0
    ) -> None:
        if isinstance(reference_steps, bool) or reference_steps < 1:
            raise ConfigError(
                f"boss: reference_steps must be an integer >= 1, got {reference_steps}"
            )
        self.reference_steps = int(reference_steps)
        self.loss = check_loss(loss, self.name)
        self.cond_dropout = check_probability(cond_dropout, "cond_dropout", self.name)
        self.teacher: nn.Module | None = None
        self.time_grid: Tensor | None = None

    def prepare(self, teacher: nn.Module, time_grid: Sequence[float] | Tensor) -> None:
        """Keep a frozen copy of ``teacher`` and the K-step ``time_grid`` (0 … 1)."""
        self.time_grid = check_time_grid(time_grid, self.name)
        frozen = copy.deepcopy(unwrap(teacher)).eval()
        self.teacher = frozen.requires_grad_(False)

    def __call__(self, model: nn.Module, batch: Batch) -> tuple[Tensor, dict[str, float]]:
        if self.teacher is None or self.time_grid is None:
            raise FlowError("boss: call objective.prepare(teacher, time_grid) before training")
        source = batch.get("x0", batch.get("x1"))
        if source is None:
            raise FlowError(f"boss: the batch needs key 'x0' (or 'x1'); got keys {sorted(batch)}")
        x0 = source if "x0" in batch else torch.randn_like(source)
        cond = drop_condition(model, batch.get("cond"), self.cond_dropout, self.name)
        grid = self.time_grid.to(device=x0.device, dtype=x0.dtype)
        states = batch.get("trajectory")
        if states is None:
            self.teacher.to(x0.device)
            states = reference_states(self.teacher, x0, self.time_grid, self.reference_steps, cond)
        elif states.shape != (x0.shape[0], grid.numel(), *x0.shape[1:]):
            raise FlowError(
                f"boss: batch 'trajectory' must have shape "
                f"{(x0.shape[0], grid.numel(), *x0.shape[1:])}, got {tuple(states.shape)}"
            )
        n = x0.shape[0]
        k = torch.randint(grid.numel() - 1, (n,), device=x0.device)
        rows = torch.arange(n, device=x0.device)
        start, end = states[rows, k], states[rows, k + 1]
        width = (grid[k + 1] - grid[k]).reshape(n, *([1] * (x0.ndim - 1)))
        chord = (end - start) / width
        loss = per_sample_loss(self.loss, model(start, grid[k], cond) - chord).mean()
        return loss, {"loss": loss.item()}
