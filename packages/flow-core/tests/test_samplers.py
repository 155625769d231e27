import itertools
import math

import pytest
import torch
from torch import nn

from flow_core.errors import ConfigError
from flow_core.protocols import Sampler
from flow_core.samplers import Dopri5, Euler


class Exponential(nn.Module):
    """dx/dt = a·x, so x(1) = x0·exp(a); counts calls and checks the time argument."""

    def __init__(self, a=1.0):
        super().__init__()
        self.a = a
        self.calls = 0
        self.times = []

    def forward(self, x, t, cond=None):
        assert t.shape == (x.shape[0],) and t.dtype == x.dtype
        self.calls += 1
        self.times.append(t[0].item())
        return self.a * x


class TimeDependent(nn.Module):
    """dx/dt = 3t², so x(1) = x0 + 1."""

    def forward(self, x, t, cond=None):
        return 3 * t[:, None] ** 2 * torch.ones_like(x)


def _x0():
    return torch.linspace(-1.0, 1.0, 6, dtype=torch.float64).reshape(3, 2)


@pytest.mark.parametrize("sampler", [Euler(), Dopri5()])
def test_samplers_satisfy_the_protocol(sampler):
    assert isinstance(sampler, Sampler)
    assert sampler.nfe == 0


def test_euler_matches_closed_form_and_counts_steps():
    model, x0 = Exponential(a=0.7), _x0()
    sampler = Euler(steps=10)
    x1 = sampler.sample(model, x0)
    torch.testing.assert_close(x1, x0 * (1 + 0.7 / 10) ** 10)
    assert sampler.nfe == 10 == model.calls
    assert model.times == pytest.approx([k / 10 for k in range(10)])


def test_euler_is_first_order():
    x0 = _x0()
    exact = x0 * math.e
    errors = [
        (Euler(steps=n).sample(Exponential(), x0) - exact).abs().max().item() for n in (25, 50, 100)
    ]
    for coarse, fine in itertools.pairwise(errors):
        assert coarse / fine == pytest.approx(2.0, rel=0.05)


def test_euler_one_step_is_exact_on_a_straight_flow():
    x0 = _x0()
    shift = torch.tensor([1.5, -0.5], dtype=x0.dtype)

    class Constant(nn.Module):
        def forward(self, x, t, cond=None):
            return shift.expand_as(x)

    torch.testing.assert_close(Euler(steps=1).sample(Constant(), x0), x0 + shift)


def test_euler_time_grid():
    model, x0 = TimeDependent(), _x0()
    sampler = Euler(time_grid=[0.0, 0.5, 0.75, 1.0])
    x1 = sampler.sample(model, x0)
    # Σ 3 t_k² h_k on the grid: 3·(0·0.5 + 0.25·0.25 + 0.5625·0.25)
    torch.testing.assert_close(x1, x0 + 3 * (0.25 * 0.25 + 0.5625 * 0.25))
    assert sampler.nfe == sampler.steps == 3


@pytest.mark.parametrize("steps", [0, -3, 2.5, True])
def test_euler_rejects_bad_steps(steps):
    with pytest.raises(ConfigError, match="steps"):
        Euler(steps=steps)


@pytest.mark.parametrize(
    "grid", [[0.0], [0.0, 0.5, 0.5, 1.0], [1.0, 0.0], [[0.0, 1.0]], [0.0, float("inf")]]
)
def test_euler_rejects_bad_time_grid(grid):
    with pytest.raises(ConfigError, match="time_grid"):
        Euler(time_grid=grid)


def test_dopri5_matches_exact_solution_and_counts_evaluations():
    for dtype in (torch.float32, torch.float64):
        model, x0 = Exponential(a=1.3), _x0().to(dtype)
        sampler = Dopri5()
        x1 = sampler.sample(model, x0)
        assert x1.dtype == dtype
        torch.testing.assert_close(x1, x0 * math.exp(1.3), atol=1e-4, rtol=1e-4)
        assert sampler.nfe == model.calls > 0


def test_dopri5_time_dependent_field_and_tolerance_effect():
    x0 = _x0()
    torch.testing.assert_close(Dopri5().sample(TimeDependent(), x0), x0 + 1, atol=1e-6, rtol=0)
    loose, tight = Dopri5(rtol=1e-3, atol=1e-3), Dopri5(rtol=1e-8, atol=1e-8)
    loose.sample(Exponential(a=2.0), x0)
    tight.sample(Exponential(a=2.0), x0)
    assert tight.nfe > loose.nfe


@pytest.mark.parametrize("kwargs", [{"rtol": 0.0}, {"atol": -1e-5}, {"rtol": float("nan")}])
def test_dopri5_rejects_bad_tolerances(kwargs):
    with pytest.raises(ConfigError, match="rtol"):
        Dopri5(**kwargs)


@pytest.mark.parametrize(
    ("sampler", "slope"), [(Euler(steps=8), (1 + 0.5 / 8) ** 8), (Dopri5(), math.exp(0.5))]
)
def test_samplers_follow_the_callers_grad_mode(sampler, slope):
    x0 = _x0().requires_grad_()
    with torch.no_grad():
        assert sampler.sample(Exponential(a=0.5), x0).grad_fn is None
    x1 = sampler.sample(Exponential(a=0.5), x0)
    (grad,) = torch.autograd.grad(x1.sum(), x0)
    torch.testing.assert_close(grad, torch.full_like(x0, slope), atol=1e-4, rtol=1e-4)


def test_cond_is_passed_through():
    seen = []

    class Spy(nn.Module):
        def forward(self, x, t, cond=None):
            seen.append(cond)
            return torch.zeros_like(x)

    cond = torch.tensor([0, 1, 2])
    for sampler in (Euler(steps=2), Dopri5()):
        seen.clear()
        sampler.sample(Spy(), _x0(), cond)
        assert seen and all(c is cond for c in seen)
