import itertools
import math

import pytest
import torch

from flow_core.errors import ConfigError, FlowError
from flow_core.paths import (
    PREDICTION_KINDS,
    SCHEDULES,
    AffinePath,
    CosineSchedule,
    LinearPath,
    LinearSchedule,
    PolynomialSchedule,
    Schedule,
    VESchedule,
    get_schedule,
)

ALL_SCHEDULES = [
    LinearSchedule(),
    CosineSchedule(),
    PolynomialSchedule(2.0),
    PolynomialSchedule(0.7),
    VESchedule(),
    VESchedule(sigma_max=5.0, sigma_min=0.1),
]
IDS = [repr(s) for s in ALL_SCHEDULES]


def _data(shape=(6, 3), dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(shape, generator=g, dtype=dtype)
    x1 = torch.randn(shape, generator=g, dtype=dtype)
    t = 0.05 + 0.9 * torch.rand(shape[0], generator=g, dtype=dtype)
    return x0, x1, t


def gaussian_fields(path, x, t, m, q):
    """Score and velocity of x_t = α x1 + σ x0 with x1 ~ N(m, q² I), x0 ~ N(0, I)."""
    alpha, sigma, d_alpha, d_sigma = path.coefficients(t, x)
    var = alpha**2 * q**2 + sigma**2
    centred = x - alpha * m
    score = -centred / var
    x1_mean = m + alpha * q**2 * centred / var
    x0_mean = sigma * centred / var
    return score, d_alpha * x1_mean + d_sigma * x0_mean, x1_mean, x0_mean


def test_registry_of_schedules():
    assert set(SCHEDULES) == {"linear", "cosine", "polynomial", "ve"}
    for name, make in SCHEDULES.items():
        assert isinstance(make(), Schedule)
        assert get_schedule(name) == make()
    with pytest.raises(ConfigError, match=r"'sigmoid'.*linear, cosine, polynomial, ve"):
        get_schedule("sigmoid")
    with pytest.raises(ConfigError, match="schedule"):
        AffinePath("sigmoid")


@pytest.mark.parametrize("power", [0.0, -1.0, math.inf, math.nan])
def test_polynomial_rejects_bad_power(power):
    with pytest.raises(ConfigError, match="power"):
        PolynomialSchedule(power)


@pytest.mark.parametrize(("smax", "smin"), [(1.0, 2.0), (1.0, 0.0), (math.inf, 1.0), (1.0, 1.0)])
def test_ve_rejects_bad_sigmas(smax, smin):
    with pytest.raises(ConfigError, match="sigma_min"):
        VESchedule(sigma_max=smax, sigma_min=smin)


@pytest.mark.parametrize("schedule", ALL_SCHEDULES[:4], ids=IDS[:4])
def test_boundary_conditions(schedule):
    ends = torch.tensor([0.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(schedule.alpha(ends), ends)
    torch.testing.assert_close(schedule.sigma(ends), 1 - ends)


def test_ve_is_noise_level_from_sigma_max_to_sigma_min():
    s = VESchedule(sigma_max=80.0, sigma_min=0.002)
    t = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    torch.testing.assert_close(s.alpha(t), torch.ones_like(t))
    torch.testing.assert_close(
        s.sigma(t), torch.tensor([80.0, math.sqrt(80 * 0.002), 0.002]).double()
    )


def test_cosine_is_variance_preserving():
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    s = CosineSchedule()
    torch.testing.assert_close(s.alpha(t) ** 2 + s.sigma(t) ** 2, torch.ones_like(t))


@pytest.mark.parametrize("schedule", ALL_SCHEDULES, ids=IDS)
def test_derivatives_match_autograd(schedule):
    t = torch.linspace(0.05, 0.95, 9, dtype=torch.float64, requires_grad=True)
    for value, derivative in (
        (schedule.alpha, schedule.d_alpha),
        (schedule.sigma, schedule.d_sigma),
    ):
        (grad,) = torch.autograd.grad((value(t) + 0 * t).sum(), t)  # α may be constant
        torch.testing.assert_close(derivative(t.detach()), grad)


@pytest.mark.parametrize("schedule", ALL_SCHEDULES, ids=IDS)
def test_target_velocity_is_time_derivative(schedule):
    path = AffinePath(schedule)
    x0, x1, t = _data((5, 2, 3))
    _, dx_dt = torch.autograd.functional.jvp(
        lambda s: path.interpolate(x0, x1, s), t, torch.ones_like(t)
    )
    torch.testing.assert_close(path.target_velocity(x0, x1, t), dx_dt)


@pytest.mark.parametrize("schedule", ALL_SCHEDULES, ids=IDS)
def test_conditional_predictions_recover_the_endpoints(schedule):
    path = AffinePath(schedule)
    x0, x1, t = _data()
    x_t = path.interpolate(x0, x1, t)
    v = path.target_velocity(x0, x1, t)
    torch.testing.assert_close(path.velocity_to_data(v, x_t, t), x1)
    torch.testing.assert_close(path.velocity_to_noise(v, x_t, t), x0)
    torch.testing.assert_close(path.data_to_velocity(x1, x_t, t), v)
    torch.testing.assert_close(path.noise_to_velocity(x0, x_t, t), v)
    sigma = path.coefficients(t, x_t)[1]
    torch.testing.assert_close(path.velocity_to_score(v, x_t, t), -x0 / sigma)
    torch.testing.assert_close(path.score_to_velocity(-x0 / sigma, x_t, t), v)


@pytest.mark.parametrize("schedule", ALL_SCHEDULES, ids=IDS)
def test_conversions_round_trip_and_compose_in_float64(schedule):
    path = AffinePath(schedule)
    _, x_t, t = _data((8, 4))
    p = torch.randn(x_t.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    for a, b in itertools.product(PREDICTION_KINDS, repeat=2):
        there = path.convert(p, x_t, t, a, b)
        torch.testing.assert_close(path.convert(there, x_t, t, b, a), p, rtol=1e-10, atol=1e-10)
        for c in PREDICTION_KINDS:
            torch.testing.assert_close(
                path.convert(there, x_t, t, b, c),
                path.convert(p, x_t, t, a, c),
                rtol=1e-10,
                atol=1e-10,
            )


@pytest.mark.parametrize("schedule", ALL_SCHEDULES, ids=IDS)
def test_gaussian_score_equals_converted_velocity(schedule):
    # x1 ~ N(m, q²I): the exact marginal velocity converts to the exact marginal score, and to
    # the posterior means E[x1 | x_t], E[x0 | x_t].
    path = AffinePath(schedule)
    m, q = torch.tensor([1.5, -0.5, 0.25], dtype=torch.float64), 0.3
    _, x_t, t = _data((7, 3))
    score, velocity, x1_mean, x0_mean = gaussian_fields(path, x_t, t, m, q)
    torch.testing.assert_close(path.velocity_to_score(velocity, x_t, t), score)
    torch.testing.assert_close(path.score_to_velocity(score, x_t, t), velocity)
    torch.testing.assert_close(path.velocity_to_data(velocity, x_t, t), x1_mean)
    torch.testing.assert_close(path.velocity_to_noise(velocity, x_t, t), x0_mean)


def test_linear_gaussian_matches_closed_forms():
    # Closed forms (Lai et al. 2025, arXiv 2510.21890):
    # v = m + ((t q² − (1 − t))/V_t)(x − t m), s = −(x − t m)/V_t, s = (t v − x)/(1 − t).
    path = LinearPath()
    m, q = torch.tensor([2.0, -1.0], dtype=torch.float64), 0.5
    _, x, t = _data((5, 2))
    tb = t[:, None]
    var = (1 - tb) ** 2 + tb**2 * q**2
    v = m + (tb * q**2 - (1 - tb)) / var * (x - tb * m)
    s = -(x - tb * m) / var
    torch.testing.assert_close(path.velocity_to_score(v, x, t), s)
    torch.testing.assert_close(s, (tb * v - x) / (1 - tb))
    torch.testing.assert_close(gaussian_fields(path, x, t, m, q)[1], v)


def test_linear_path_is_the_affine_linear_path():
    path = LinearPath()
    assert isinstance(path, AffinePath) and isinstance(path.schedule, LinearSchedule)
    _, x_t, t = _data()
    v = torch.randn_like(x_t)
    torch.testing.assert_close(path.data_from_velocity(x_t, t, v), path.velocity_to_data(v, x_t, t))
    torch.testing.assert_close(
        path.source_from_velocity(x_t, t, v), path.velocity_to_noise(v, x_t, t)
    )


@pytest.mark.parametrize("schedule", ALL_SCHEDULES, ids=IDS)
def test_float32_in_float32_out(schedule):
    path = AffinePath(schedule)
    x0, x1, t = _data((4, 1, 2, 2), dtype=torch.float32)
    x_t = path.interpolate(x0, x1, t)
    assert x_t.dtype == torch.float32 and x_t.shape == (4, 1, 2, 2)
    for a, b in itertools.product(PREDICTION_KINDS, repeat=2):
        out = path.convert(x1, x_t, t, a, b)
        assert out.dtype == torch.float32 and out.shape == x_t.shape


def test_convert_rejects_unknown_kind_and_bad_time():
    path = AffinePath("cosine")
    x0, x1, t = _data()
    with pytest.raises(ConfigError, match=r"'epsilon'.*velocity, data, noise, score"):
        path.convert(x0, x1, t, "epsilon", "velocity")
    with pytest.raises(FlowError, match="shape"):
        path.velocity_to_data(x0, x1, t[:-1])
