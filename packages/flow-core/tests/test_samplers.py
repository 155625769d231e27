import itertools
import math

import pytest
import torch
from torch import nn

from flow_core.errors import ConfigError
from flow_core.protocols import Sampler
from flow_core.samplers import (
    ADAPTIVE_METHODS,
    RK4,
    AdaptiveODE,
    Dopri5,
    Euler,
    FewStepAverageVelocity,
    Heun,
    Midpoint,
    shifted_grid,
)

FIXED = [(Euler, 1, 1), (Heun, 2, 2), (Midpoint, 2, 2), (RK4, 4, 4)]
"""(class, order, evaluations per step)."""


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


@pytest.mark.parametrize(
    "sampler",
    [Euler(), Heun(), Midpoint(), RK4(), Dopri5(), AdaptiveODE(), FewStepAverageVelocity()],
)
def test_samplers_satisfy_the_protocol(sampler):
    assert isinstance(sampler, Sampler)
    assert sampler.nfe == 0
    expected = "average-velocity" if isinstance(sampler, FewStepAverageVelocity) else "velocity"
    assert type(sampler).model_kind == expected


class TimeScaled(nn.Module):
    """dx/dt = t·x, so x(1) = x0·exp(1/2): checks that every stage uses its own time."""

    def forward(self, x, t, cond=None):
        return t[:, None] * x


@pytest.mark.parametrize(("cls", "order", "_"), FIXED)
@pytest.mark.parametrize(
    ("model", "exact"), [(Exponential(), math.e), (TimeScaled(), math.exp(0.5))]
)
def test_fixed_step_methods_converge_at_their_order(cls, order, _, model, exact):
    x0 = _x0()
    errors = [(cls(steps=n).sample(model, x0) - x0 * exact).abs().max().item() for n in (8, 16, 32)]
    for coarse, fine in itertools.pairwise(errors):
        assert coarse / fine == pytest.approx(2.0**order, rel=0.15)


@pytest.mark.parametrize(("cls", "_", "per_step"), FIXED)
def test_fixed_step_nfe_counts_every_stage(cls, _, per_step):
    model = Exponential()
    sampler = cls(steps=5)
    sampler.sample(model, _x0())
    assert sampler.nfe == per_step * 5 == model.calls


@pytest.mark.parametrize(("cls", "_", "__"), FIXED)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fixed_step_keeps_dtype_and_image_shapes(cls, _, __, dtype):
    x0 = torch.randn(2, 3, 4, 4, dtype=dtype)
    x1 = cls(steps=3).sample(lambda x, t, cond=None: -x * t.view(-1, 1, 1, 1), x0)
    assert x1.dtype == dtype and x1.shape == x0.shape


def test_grid_options_of_fixed_step_samplers():
    torch.testing.assert_close(
        Heun(steps=6, grid="shifted", shift=2.0).time_grid, shifted_grid(6, 2.0)
    )
    sampler = RK4(time_grid=[0.0, 0.3, 1.0])
    assert sampler.steps == 2
    with pytest.raises(ConfigError, match=r"'karras'.*uniform, shifted, bellman"):
        Euler(grid="karras")
    with pytest.raises(ConfigError, match="shift"):
        Midpoint(grid="shifted", shift=0.0)
    with pytest.raises(ConfigError, match="not both"):
        Euler(grid="shifted", time_grid=[0.0, 1.0])
    with pytest.raises(ConfigError, match="reference_steps"):
        Euler(steps=65, grid="bellman")


def test_bellman_grid_is_computed_once_from_the_first_call_and_cached():
    model = Exponential()
    sampler = Heun(steps=3, grid="bellman", reference_steps=8)
    assert sampler.time_grid is None
    sampler.sample(model, _x0())
    grid = sampler.time_grid
    assert grid is not None and grid.numel() == 4 and grid[0] == 0 and grid[-1] == 1
    assert sampler.nfe == 6
    calls = model.calls
    sampler.sample(model, _x0())
    assert model.calls - calls == 6  # no recomputation
    assert sampler.time_grid is grid


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
    with pytest.raises(ConfigError, match="rtol"):
        AdaptiveODE("bosh3", **kwargs)


@pytest.mark.parametrize("method", ADAPTIVE_METHODS)
def test_adaptive_methods_solve_accurately_and_count(method):
    # Tolerances bound local errors; the global error of the low-order pairs is larger.
    errors, nfes = [], []
    for tol in (1e-3, 1e-6):
        model, x0 = Exponential(a=1.3), _x0()
        sampler = AdaptiveODE(method, rtol=tol, atol=tol)
        x1 = sampler.sample(model, x0)
        errors.append((x1 - x0 * math.exp(1.3)).abs().max().item())
        nfes.append(sampler.nfe)
        assert sampler.nfe == model.calls > 0
    assert errors[1] < 1e-3 and errors[1] < errors[0] / 5
    assert nfes[1] >= nfes[0]


def test_adaptive_method_names_and_each_method_is_used():
    assert AdaptiveODE("adaptive-heun").method == "adaptive_heun"
    nfes = set()
    for method in ADAPTIVE_METHODS:
        sampler = AdaptiveODE(method, rtol=1e-3, atol=1e-3)
        sampler.sample(Exponential(a=1.3), _x0())
        nfes.add(sampler.nfe)
    assert len(nfes) == len(ADAPTIVE_METHODS)  # different tableaux, different step counts


def test_adaptive_rejects_unknown_method():
    with pytest.raises(ConfigError, match=r"'rk45'.*dopri5, dopri8, bosh3, fehlberg2"):
        AdaptiveODE("rk45")


def test_dopri5_is_adaptive_dopri5():
    a, b = Dopri5(rtol=1e-4, atol=1e-4), AdaptiveODE("dopri5", rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(a.sample(Exponential(), _x0()), b.sample(Exponential(), _x0()))
    assert a.nfe == b.nfe


@pytest.mark.parametrize(
    ("sampler", "slope"),
    [
        (Euler(steps=8), (1 + 0.5 / 8) ** 8),
        (Heun(steps=8), (1 + 0.5 / 8 + (0.5 / 8) ** 2 / 2) ** 8),
        (RK4(steps=8), math.exp(0.5)),
        (Dopri5(), math.exp(0.5)),
    ],
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
    for sampler in (Euler(steps=2), Heun(steps=2), Midpoint(), RK4(steps=2), Dopri5()):
        seen.clear()
        sampler.sample(Spy(), _x0(), cond)
        assert seen and all(c is cond for c in seen)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_samplers_keep_the_device():
    from flow_core.paths import to_vp
    from flow_core.samplers import ClassifierFreeGuidance, log_likelihood

    device = torch.device("cuda")
    x0 = torch.randn(8, 2, device=device)
    velocity = Exponential(a=0.5)
    for sampler in (Euler(steps=4, grid="bellman", reference_steps=8), RK4(steps=2), Dopri5()):
        assert sampler.sample(velocity, x0).device == x0.device
    assert Heun(steps=2).sample(to_vp(velocity), x0).device == x0.device

    def conditional(x, t, cond=None):
        return x if cond is None else x * cond[:, None]

    guided = ClassifierFreeGuidance(conditional, 2.0, parameterization="data")
    cond = torch.arange(8.0, device=device)
    assert Midpoint(steps=2).sample(guided, x0, cond).device == x0.device
    average = FewStepAverageVelocity(steps=2)
    assert average.sample(lambda x, r, t, cond=None: x, x0).device == x0.device
    log_p, _ = log_likelihood(velocity, x0, exact=False)
    assert log_p.device == x0.device
