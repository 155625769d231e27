"""Time grids for fixed-step sampling: uniform, shifted (SD3) and Bellman-optimal (BOSS).

Every grid is a float64 CPU tensor 0 = t_0 < t_1 < … < t_K = 1 in the project convention
(t = 0 noise, t = 1 data).

- **Uniform:** t_k = k/K.
- **Shifted** (Esser et al. 2024, "Scaling Rectified Flow Transformers", SD3): the timestep
  shift τ′ = s·τ/(1 + (s − 1)·τ) on the noise level τ = 1 − t becomes, in the project
  convention, t′ = t/(s − (s − 1)·t); with s > 1 the steps crowd near the noise (t = 0).
- **Bellman-optimal** (Nguyen et al. 2023, "Bellman Optimal Stepsize Straightening of
  Flow-Matching Models", BOSS; already in the project convention): solve the ODE on a fine
  uniform reference grid τ_i = i/N from calibration noise x0, x_{i+1} = Φ(x_i, τ_i → τ_{i+1}),
  where Φ is the one-step map of the sampler that will use the grid (Euler in the paper, so
  every reference point lies on the sampler's own fine solution). A jump from node i to node
  j > i costs the mean squared distance it lands from the reference,

      C[i, j] = E‖Φ(x_i, τ_i → τ_j) − x_j‖²,

  and the K-step schedule is the cheapest path of K jumps from node 0 to node N, found by the
  Bellman recursion V_1(j) = C[0, j], V_k(j) = min_{i<j} V_{k−1}(i) + C[i, j] in O(K·N²).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from flow_core.errors import ConfigError
from flow_core.paths.affine import expand_time

__all__ = [
    "StepFn",
    "bellman_nodes",
    "bellman_time_grid",
    "brute_force_grid",
    "brute_force_nodes",
    "check_steps",
    "euler_step",
    "grid_cost_matrix",
    "shifted_grid",
    "uniform_grid",
    "validate_time_grid",
]

StepFn = Callable[[nn.Module, Tensor, Tensor, Tensor, Tensor, "Tensor | None"], Tensor]
"""A one-step ODE map ``step(model, x, t, t_next, velocity, cond) -> x_next``.

``t`` and ``t_next`` have shape ``(B,)``, and ``velocity = model(x, t, cond)`` is passed in
already evaluated (every explicit Runge–Kutta method starts with it).
"""

_MAX_COST_ROWS = 8192


def euler_step(
    model: nn.Module, x: Tensor, t: Tensor, t_next: Tensor, velocity: Tensor, cond: Tensor | None
) -> Tensor:
    """The Euler map ``x + (t_next − t)·v(x, t)`` (evaluates nothing: ``velocity`` is given)."""
    return x + expand_time(t_next - t, x) * velocity


def check_steps(steps: object, owner: str) -> int:
    """``steps`` as an int, or :class:`ConfigError` (naming ``owner``) unless it is an int >= 1."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"{owner}: steps must be an integer >= 1, got {steps!r}")
    return steps


def validate_time_grid(time_grid: Sequence[float] | Tensor, owner: str) -> Tensor:
    """``time_grid`` as a float64 CPU tensor, checked to be 1-D, finite and strictly increasing.

    Raises:
        ConfigError: naming ``owner``, when the grid has fewer than 2 times or is not strictly
            increasing and finite.
    """
    grid = torch.as_tensor(time_grid, dtype=torch.float64).detach().cpu()
    increasing = grid.ndim == 1 and bool(torch.all(grid[1:] > grid[:-1]))
    if not increasing or grid.numel() < 2 or not bool(grid.isfinite().all()):
        raise ConfigError(
            f"{owner}: time_grid must be a 1-D strictly increasing sequence of at least "
            f"2 finite times, got {grid.tolist()}"
        )
    return grid


def uniform_grid(steps: int) -> Tensor:
    """``[0, 1/K, …, 1]`` with ``K = steps``."""
    return torch.linspace(0.0, 1.0, check_steps(steps, "uniform grid") + 1, dtype=torch.float64)


def shifted_grid(steps: int, shift: float) -> Tensor:
    """The uniform grid mapped by the SD3 shift ``t′ = t/(s − (s − 1)·t)``, ``s = shift > 0``.

    ``shift = 1`` is the uniform grid; ``shift > 1`` takes smaller steps near the noise:

    >>> uniform_grid(4).tolist()
    [0.0, 0.25, 0.5, 0.75, 1.0]
    >>> [round(t, 3) for t in shifted_grid(4, 3.0).tolist()]
    [0.0, 0.1, 0.25, 0.5, 1.0]
    """
    if not shift > 0 or not math.isfinite(shift):
        raise ConfigError(f"shifted grid: shift must be finite and > 0, got {shift}")
    t = uniform_grid(steps)
    return t / (shift - (shift - 1) * t)


def _check_reference(steps: int, reference_steps: int) -> None:
    check_steps(steps, "bellman grid")
    check_steps(reference_steps, "bellman grid reference")
    if steps > reference_steps:
        raise ConfigError(
            f"bellman grid: steps ({steps}) must not exceed reference_steps ({reference_steps})"
        )


@torch.no_grad()
def grid_cost_matrix(
    model: nn.Module,
    x0: Tensor,
    reference_steps: int = 64,
    cond: Tensor | None = None,
    step: StepFn = euler_step,
) -> Tensor:
    """The BOSS jump costs ``C[i, j] = E‖step(x_i, τ_i → τ_j) − x_j‖²`` on ``τ_i = i/N``.

    The reference points x_i are ``step`` applied on the fine uniform grid from ``x0``
    (``N = reference_steps``); the expectation is the mean over the batch of the squared
    Euclidean norm per sample. Returns a float64 CPU tensor of shape ``(N + 1, N + 1)`` with
    ``+inf`` on and below the diagonal. Runs without gradients; costs N model evaluations for
    the reference plus, for a multi-stage ``step``, its extra stages for every pair i < j
    (batched over j, at most about 8192 rows per call).
    """
    n = check_steps(reference_steps, "bellman grid reference")
    batch = x0.shape[0]
    taus = uniform_grid(n).tolist()

    def times(values: Sequence[float]) -> Tensor:
        return torch.tensor(values, dtype=x0.dtype, device=x0.device).repeat_interleave(batch)

    xs, vs = [x0], []
    for tau, tau_next in itertools.pairwise(taus):
        t, t_next = times([tau]), times([tau_next])
        vs.append(model(xs[-1], t, cond))
        xs.append(step(model, xs[-1], t, t_next, vs[-1], cond))
    reference = torch.stack(xs)
    cost = torch.full((n + 1, n + 1), math.inf, dtype=torch.float64)
    chunk = max(1, _MAX_COST_ROWS // batch)
    for i in range(n):
        for start in range(i + 1, n + 1, chunk):
            ends = range(start, min(start + chunk, n + 1))
            k = len(ends)
            jumped = step(
                model,
                xs[i].repeat(k, *([1] * (x0.ndim - 1))),
                times([taus[i]] * k),
                times([taus[j] for j in ends]),
                vs[i].repeat(k, *([1] * (x0.ndim - 1))),
                None if cond is None else cond.repeat(k, *([1] * (cond.ndim - 1))),
            )
            error = jumped.reshape(k, batch, -1) - reference[start : start + k].reshape(
                k, batch, -1
            )
            cost[i, start : start + k] = error.double().square().sum(-1).mean(-1).cpu()
    return cost


def _check_cost(cost: Tensor, steps: int) -> int:
    n = cost.shape[0] - 1 if cost.ndim == 2 else 0
    if n < 1 or cost.shape[1] != n + 1:
        raise ConfigError(
            f"bellman grid: cost must be square of size >= 2, got {tuple(cost.shape)}"
        )
    _check_reference(steps, n)
    return n


def bellman_nodes(cost: Tensor, steps: int) -> list[int]:
    """The cheapest ``steps``-jump path ``0 = i_0 < … < i_K = N`` through ``cost[i, j]``.

    Dynamic programming: V_1(j) = C[0, j], V_k(j) = min_{i<j} V_{k−1}(i) + C[i, j], then
    backtracking from node N. Entries on and below the diagonal are ignored.
    """
    n = _check_cost(cost, steps)
    c = cost.detach().to(torch.float64).cpu()
    c = torch.where(torch.ones_like(c, dtype=torch.bool).triu(1), c, math.inf)
    value = c[0].clone()
    parents = []
    for _ in range(steps - 1):
        best, parent = (value[:, None] + c).min(dim=0)
        value = best
        parents.append(parent)
    nodes = [n]
    for parent in reversed(parents):
        nodes.append(int(parent[nodes[-1]]))
    nodes.append(0)
    return nodes[::-1]


def brute_force_nodes(cost: Tensor, steps: int) -> list[int]:
    """The same path as :func:`bellman_nodes` by trying every subset of interior nodes.

    Exponential in the number of nodes; for checking the dynamic programme on small grids.
    """
    n = _check_cost(cost, steps)
    c = cost.detach().to(torch.float64).cpu().tolist()
    best: tuple[float, list[int]] = (math.inf, [])
    for interior in itertools.combinations(range(1, n), steps - 1):
        nodes = [0, *interior, n]
        total = sum(c[i][j] for i, j in itertools.pairwise(nodes))
        if total < best[0]:
            best = (total, nodes)
    return best[1]


def bellman_time_grid(
    model: nn.Module,
    x0: Tensor,
    steps: int,
    reference_steps: int = 64,
    cond: Tensor | None = None,
    step: StepFn = euler_step,
) -> Tensor:
    """The BOSS schedule: ``steps`` + 1 times chosen from the grid ``i/reference_steps``.

    ``x0`` (calibration noise, with its per-sample ``cond``) seeds the reference solve made
    with ``step`` (Euler by default, as in BOSS); see :func:`grid_cost_matrix`.

    Raises:
        ConfigError: ``steps`` or ``reference_steps`` is not an integer >= 1, or
            ``steps > reference_steps``.
    """
    _check_reference(steps, reference_steps)
    cost = grid_cost_matrix(model, x0, reference_steps, cond, step)
    return uniform_grid(reference_steps)[bellman_nodes(cost, steps)]


def brute_force_grid(
    model: nn.Module,
    x0: Tensor,
    steps: int,
    reference_steps: int = 12,
    cond: Tensor | None = None,
    step: StepFn = euler_step,
) -> Tensor:
    """:func:`bellman_time_grid` by exhaustive search (small ``reference_steps`` only)."""
    _check_reference(steps, reference_steps)
    cost = grid_cost_matrix(model, x0, reference_steps, cond, step)
    return uniform_grid(reference_steps)[brute_force_nodes(cost, steps)]
