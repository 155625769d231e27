import itertools

import pytest
import torch
from torch import nn

from flow_core.errors import ConfigError
from flow_core.samplers import RK4, Euler, Heun, bellman_time_grid, brute_force_grid
from flow_core.samplers.fixed_step import heun_step, rk4_step
from flow_core.samplers.grids import (
    bellman_nodes,
    brute_force_nodes,
    grid_cost_matrix,
    shifted_grid,
    uniform_grid,
)

M = torch.tensor([1.0, -2.0], dtype=torch.float64)


class GaussianFlow(nn.Module):
    """Exact velocity from N(0, I) to N(M, q² I) on the linear path; x(1) = M + q·x0.

    The closed form is in Lai et al. 2025, "The Principles of Diffusion Models", arXiv 2510.21890.
    """

    def __init__(self, q):
        super().__init__()
        self.q = q

    def forward(self, x, t, cond=None):
        t = t[:, None]
        var = (1 - t) ** 2 + t**2 * self.q**2
        return M + (t * self.q**2 - (1 - t)) / var * (x - t * M)


def _noise(n, seed):
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_uniform_and_shifted_grids():
    torch.testing.assert_close(uniform_grid(4), torch.tensor([0, 0.25, 0.5, 0.75, 1]).double())
    torch.testing.assert_close(shifted_grid(7, 1.0), uniform_grid(7))
    for shift in (0.5, 3.0):
        grid = shifted_grid(10, shift)
        assert grid[0] == 0 and grid[-1] == 1 and bool((grid.diff() > 0).all())
        # The τ-convention SD3 shift τ′ = sτ/(1 + (s − 1)τ) on τ = 1 − t gives t′ = 1 − τ′.
        tau = 1 - uniform_grid(10)
        torch.testing.assert_close(grid, 1 - shift * tau / (1 + (shift - 1) * tau))
    # s > 1 spends more steps near the noise (t = 0): a smaller first step than uniform.
    assert shifted_grid(10, 3.0)[1] < 0.1 < shifted_grid(10, 0.5)[1]


@pytest.mark.parametrize("steps", [0, -1, 1.5, True])
def test_grids_reject_bad_steps(steps):
    with pytest.raises(ConfigError, match="steps"):
        uniform_grid(steps)


@pytest.mark.parametrize("shift", [0.0, -2.0, float("inf")])
def test_shifted_grid_rejects_bad_shift(shift):
    with pytest.raises(ConfigError, match="shift"):
        shifted_grid(4, shift)


def test_dynamic_programme_equals_brute_force_on_random_costs():
    g = torch.Generator().manual_seed(0)
    for trial in range(5):
        cost = torch.rand(10, 10, generator=g, dtype=torch.float64) ** (trial + 1)
        for steps in range(1, 10):
            nodes = bellman_nodes(cost, steps)
            assert nodes == brute_force_nodes(cost, steps)
            assert len(nodes) == steps + 1 and nodes[0] == 0 and nodes[-1] == 9


def test_dynamic_programme_finds_the_cheapest_path_not_a_greedy_one():
    # Greedy from node 0 would take the cheap jump 0→1 and then pay 100 for 1→3.
    cost = torch.full((4, 4), 50.0, dtype=torch.float64)
    cost[0, 1], cost[1, 3], cost[0, 2], cost[2, 3] = 0.0, 100.0, 1.0, 1.0
    assert bellman_nodes(cost, 2) == [0, 2, 3]


@pytest.mark.parametrize("step", [None, heun_step])
def test_bellman_grid_equals_brute_force_on_a_flow(step):
    model, x0 = GaussianFlow(0.2), _noise(32, 0)
    kwargs = {} if step is None else {"step": step}
    for steps in (1, 2, 3, 5, 10):
        torch.testing.assert_close(
            bellman_time_grid(model, x0, steps, reference_steps=10, **kwargs),
            brute_force_grid(model, x0, steps, reference_steps=10, **kwargs),
        )


def test_cost_matrix_of_the_euler_reference():
    model, x0 = GaussianFlow(0.2), _noise(16, 1)
    cost = grid_cost_matrix(model, x0, reference_steps=8)
    assert cost.shape == (9, 9) and cost.dtype == torch.float64
    lower = torch.ones(9, 9, dtype=torch.bool).tril()
    assert bool(torch.isinf(cost[lower]).all())
    torch.testing.assert_close(cost.diagonal(1), torch.zeros(8, dtype=torch.float64))  # own steps
    longer = torch.ones(9, 9, dtype=torch.bool).triu(2)
    assert bool((cost[longer] > 0).all())
    # The full grid costs nothing; a single jump costs C[0, N].
    assert bellman_time_grid(model, x0, 8, reference_steps=8).tolist() == uniform_grid(8).tolist()
    assert bellman_time_grid(model, x0, 1, reference_steps=8).tolist() == [0.0, 1.0]


def test_cost_matrix_is_zero_on_a_straight_flow():
    shift = torch.tensor([1.0, 3.0], dtype=torch.float64)
    cost = grid_cost_matrix(lambda x, t, cond=None: shift.expand_as(x), _noise(4, 2), 6)
    torch.testing.assert_close(cost.triu(1), torch.zeros(7, 7, dtype=torch.float64))


def test_cost_matrix_chunks_and_passes_cond(monkeypatch):
    monkeypatch.setattr("flow_core.samplers.grids._MAX_COST_ROWS", 40)
    seen = []

    def model(x, t, cond=None):
        seen.append(cond.shape[0] == x.shape[0])
        return GaussianFlow(0.3)(x, t)

    x0, cond = _noise(16, 3), torch.arange(16)
    chunked = grid_cost_matrix(model, x0, 6, cond, rk4_step)
    monkeypatch.setattr("flow_core.samplers.grids._MAX_COST_ROWS", 8192)
    torch.testing.assert_close(grid_cost_matrix(model, x0, 6, cond, rk4_step), chunked)
    assert all(seen)


@pytest.mark.parametrize("steps", [3, 4, 6])
def test_bellman_grid_beats_uniform_and_shifted_at_equal_nfe(steps):
    # A curved flow (data much narrower than the noise bends the paths near t = 1).
    model = GaussianFlow(0.2)
    x0 = _noise(512, 4)
    exact = M + 0.2 * x0

    def error(grid):
        return ((Euler(time_grid=grid).sample(model, x0) - exact) ** 2).sum(1).mean().item()

    bellman = error(bellman_time_grid(model, _noise(64, 5), steps, reference_steps=64))
    for other in (uniform_grid(steps), shifted_grid(steps, 3.0), shifted_grid(steps, 1 / 3)):
        assert bellman <= error(other)
    assert bellman < 0.7 * error(uniform_grid(steps))


def test_bellman_grid_for_higher_order_steps_uses_their_cost():
    model, cal = GaussianFlow(0.2), _noise(64, 6)
    euler_grid = bellman_time_grid(model, cal, 3, reference_steps=32)
    rk4_grid = bellman_time_grid(model, cal, 3, reference_steps=32, step=rk4_step)
    assert rk4_grid.tolist() != euler_grid.tolist()
    sampler = RK4(steps=3, grid="bellman", reference_steps=32)
    sampler.sample(model, cal)
    torch.testing.assert_close(sampler.time_grid, rk4_grid)


def test_sampler_calibrates_on_at_most_256_rows():
    sizes = []

    def model(x, t, cond=None):
        sizes.append(x.shape[0])
        return -x

    Heun(steps=2, grid="bellman", reference_steps=4).sample(model, torch.zeros(300, 2))
    assert max(sizes[:4]) == 256 and sizes[-1] == 300


@pytest.mark.parametrize(("steps", "reference"), [(5, 4), (0, 4), (2, 0)])
def test_bellman_grid_rejects_bad_sizes(steps, reference):
    with pytest.raises(ConfigError, match="steps"):
        bellman_time_grid(GaussianFlow(1.0), _noise(2, 0), steps, reference_steps=reference)


def test_brute_force_is_exhaustive():
    cost = torch.rand(7, 7, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    best = min(
        sum(cost[i, j] for i, j in itertools.pairwise([0, *mid, 6]))
        for mid in itertools.combinations(range(1, 6), 2)
    )
    nodes = brute_force_nodes(cost, 3)
    assert sum(cost[i, j] for i, j in itertools.pairwise(nodes)) == best
