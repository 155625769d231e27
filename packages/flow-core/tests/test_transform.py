import pytest
import torch
from torch import nn

from flow_core.errors import ConfigError
from flow_core.paths import (
    AffinePath,
    CosineSchedule,
    PolynomialSchedule,
    ScheduleTransformedVelocity,
    VESchedule,
    to_vp,
)
from flow_core.samplers import RK4

M = torch.tensor([1.0, -2.0], dtype=torch.float64)
Q = 0.4


class GaussianVelocity(nn.Module):
    """The exact marginal velocity of `path` for x1 ~ N(M, Q² I), x0 ~ N(0, I)."""

    def __init__(self, path):
        super().__init__()
        self.path = path

    def forward(self, x, t, cond=None):
        alpha, sigma, d_alpha, d_sigma = self.path.coefficients(t, x)
        var = alpha**2 * Q**2 + sigma**2
        centred = x - alpha * M
        return d_alpha * (M + alpha * Q**2 * centred / var) + d_sigma * sigma * centred / var


class Smooth(nn.Module):
    """A random velocity field smooth in t (MLPVelocity's 1000-rad time features are not)."""

    def __init__(self, seed):
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(nn.Linear(3, 32), nn.Tanh(), nn.Linear(32, 2)).double()

    def forward(self, x, t, cond=None):
        return 2 * self.net(torch.cat([x, t[:, None]], dim=1))


def _points(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = 2 * torch.randn(n, 2, generator=g, dtype=torch.float64)
    s = 0.02 + 0.96 * torch.rand(n, generator=g, dtype=torch.float64)
    return x, s


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("linear", "cosine"),
        ("linear", "polynomial"),
        ("linear", "ve"),
        ("cosine", "linear"),  # bisection
        ("polynomial", "cosine"),  # bisection
        (AffinePath(PolynomialSchedule(3.0)), AffinePath(VESchedule(5.0, 0.05))),
    ],
)
def test_transformed_gaussian_velocity_is_the_targets_exact_velocity(source, target):
    source, target = (
        AffinePath(source) if isinstance(source, str) else source,
        (AffinePath(target) if isinstance(target, str) else target),
    )
    field = ScheduleTransformedVelocity(GaussianVelocity(source), source, target)
    x, s = _points()
    torch.testing.assert_close(field(x, s), GaussianVelocity(target)(x, s), rtol=1e-9, atol=1e-9)


def test_to_vp_is_the_cosine_path_with_closed_form_coefficients():
    field = to_vp(GaussianVelocity(AffinePath("linear")))
    assert isinstance(field.target.schedule, CosineSchedule)
    s = torch.linspace(0, 1, 9, dtype=torch.float64)
    a, b = torch.sin(torch.pi * s / 2), torch.cos(torch.pi * s / 2)
    t, dt, c, _ = field.coefficients(s)
    torch.testing.assert_close(t, a / (a + b))
    torch.testing.assert_close(c, a + b)
    torch.testing.assert_close(dt, (torch.pi / 2) / (a + b) ** 2)
    x, s = _points()
    torch.testing.assert_close(field(x, s), GaussianVelocity(AffinePath("cosine"))(x, s))


def test_bisection_matches_closed_form():
    # PolynomialSchedule(1) is the linear schedule but not a LinearSchedule, so it bisects.
    model = GaussianVelocity(AffinePath("linear"))
    closed = ScheduleTransformedVelocity(model, "linear", "cosine")
    bisected = ScheduleTransformedVelocity(model, AffinePath(PolynomialSchedule(1.0)), "cosine")
    s = torch.linspace(0, 1, 11, dtype=torch.float64)
    for a, b in zip(closed.coefficients(s), bisected.coefficients(s), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("source", "target"), [("linear", "cosine"), ("cosine", "linear")])
def test_ode_endpoints_of_the_transformed_model_match_the_original(source, target):
    model = Smooth(0)
    field = ScheduleTransformedVelocity(model, source, target)
    x0 = torch.randn(32, 2, dtype=torch.float64)
    with torch.no_grad():
        original = RK4(steps=100).sample(model, x0)
        transformed = RK4(steps=100).sample(field, x0)
        assert (original - x0).abs().max() > 0.1  # a non-trivial map
        torch.testing.assert_close(transformed, original, rtol=1e-7, atol=1e-7)


def test_transformed_state_is_the_rescaled_original_state():
    # x̄_s = c_s x_{t(s)}: integrating the transformed field to s lands on c_s times the
    # original solution at t(s).
    model = Smooth(1)
    field = ScheduleTransformedVelocity(model, "linear", "ve")
    x0 = torch.randn(8, 2, dtype=torch.float64)
    s_end = torch.tensor([0.6], dtype=torch.float64)
    s_start = torch.tensor([0.0], dtype=torch.float64)
    (t_start,), _, (c_start,), _ = field.coefficients(s_start)
    (t_end,), _, (c_end,), _ = field.coefficients(s_end)
    with torch.no_grad():
        grid = torch.linspace(float(t_start), float(t_end), 401)
        x_t = RK4(time_grid=grid).sample(model, x0)
        x_bar = RK4(time_grid=torch.linspace(0.0, 0.6, 401)).sample(field, c_start * x0)
    torch.testing.assert_close(x_bar, c_end * x_t, rtol=1e-7, atol=1e-7)


def test_float32_and_image_shapes_and_cond():
    seen = []

    class Elementwise(nn.Module):
        def forward(self, x, t, cond=None):
            seen.append(cond)
            return x * t.view(-1, 1, 1, 1)

    field = to_vp(Elementwise())
    x = torch.randn(3, 1, 4, 4)
    out = field(x, torch.rand(3), cond=torch.tensor([0, 1, 2]))
    assert out.dtype == torch.float32 and out.shape == x.shape
    assert seen[0].tolist() == [0, 1, 2]


def test_refuses_a_source_whose_snr_range_is_too_narrow():
    with pytest.raises(ConfigError, match="signal-to-noise"):
        ScheduleTransformedVelocity(GaussianVelocity(AffinePath("ve")), "ve", "linear")
