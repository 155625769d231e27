import pytest
import torch

from flow_core.errors import FlowError
from flow_core.paths import LinearPath, expand_time


def _pair(shape=(5, 3, 4, 4)):
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(shape, generator=g, dtype=torch.float64)
    x1 = torch.randn(shape, generator=g, dtype=torch.float64)
    t = torch.rand(shape[0], generator=g, dtype=torch.float64)
    return x0, x1, t


def test_expand_time_shape():
    t = torch.arange(4.0)
    assert expand_time(t, torch.zeros(4, 3, 2, 2)).shape == (4, 1, 1, 1)
    assert expand_time(t, torch.zeros(4)).shape == (4,)


@pytest.mark.parametrize("t", [torch.zeros(3), torch.zeros(4, 1), torch.tensor(0.5)])
def test_expand_time_rejects_bad_shapes(t):
    with pytest.raises(FlowError, match=r"shape \(B,\)"):
        expand_time(t, torch.zeros(4, 2))


def test_interpolate_endpoints_and_per_sample_time():
    path = LinearPath()
    x0, x1, t = _pair()
    b = x0.shape[0]
    torch.testing.assert_close(path.interpolate(x0, x1, torch.zeros(b, dtype=x0.dtype)), x0)
    torch.testing.assert_close(path.interpolate(x0, x1, torch.ones(b, dtype=x0.dtype)), x1)
    x_t = path.interpolate(x0, x1, t)
    for i in range(b):
        torch.testing.assert_close(x_t[i], (1 - t[i]) * x0[i] + t[i] * x1[i])


def test_target_velocity_is_time_derivative_of_path():
    path = LinearPath()
    x0, x1, t = _pair()
    _, dx_dt = torch.autograd.functional.jvp(
        lambda s: path.interpolate(x0, x1, s), t, torch.ones_like(t)
    )
    torch.testing.assert_close(dx_dt, path.target_velocity(x0, x1, t))


def test_conversions_recover_endpoints_from_conditional_velocity():
    path = LinearPath()
    x0, x1, t = _pair()
    x_t = path.interpolate(x0, x1, t)
    v = path.target_velocity(x0, x1, t)
    torch.testing.assert_close(path.data_from_velocity(x_t, t, v), x1)
    torch.testing.assert_close(path.source_from_velocity(x_t, t, v), x0)


def test_conversions_are_consistent_for_any_velocity():
    # x̂1 − x̂0 = v and (1 − t) x̂0 + t x̂1 = x_t for an arbitrary prediction v.
    path = LinearPath()
    x0, x1, t = _pair((6, 2))
    x_t = path.interpolate(x0, x1, t)
    v = torch.randn_like(x_t)
    x1_hat = path.data_from_velocity(x_t, t, v)
    x0_hat = path.source_from_velocity(x_t, t, v)
    torch.testing.assert_close(x1_hat - x0_hat, v)
    torch.testing.assert_close(path.interpolate(x0_hat, x1_hat, t), x_t)


def test_path_methods_reject_mismatched_time():
    path = LinearPath()
    x0, x1, _ = _pair((4, 2))
    bad = torch.zeros(3, dtype=x0.dtype)
    for call in (
        lambda: path.interpolate(x0, x1, bad),
        lambda: path.target_velocity(x0, x1, bad),
        lambda: path.data_from_velocity(x1, bad, x0),
        lambda: path.source_from_velocity(x1, bad, x0),
    ):
        with pytest.raises(FlowError):
            call()
