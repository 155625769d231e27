import math

import pytest
import torch
from torch import nn

from flow_core.errors import ConfigError
from flow_core.samplers import FewStepAverageVelocity


class ExactAverage(nn.Module):
    """The exact average velocity of dx/dt = a·x: u(x, r, t) = x·(e^{a(t−r)} − 1)/(t − r)."""

    def __init__(self, a=0.8):
        super().__init__()
        self.a = a
        self.calls = []

    def forward(self, x, r, t, cond=None):
        assert r.shape == t.shape == (x.shape[0],) and r.dtype == t.dtype == x.dtype
        assert bool((r < t).all())
        self.calls.append((r[0].item(), t[0].item(), cond))
        h = (t - r).view(-1, *([1] * (x.ndim - 1)))
        return x * torch.expm1(self.a * h) / h


def _x0(dtype=torch.float64):
    return torch.linspace(-1.0, 1.0, 6, dtype=dtype).reshape(3, 2)


@pytest.mark.parametrize("steps", [1, 2, 5])
def test_exact_flow_map_in_any_number_of_steps(steps):
    model, x0 = ExactAverage(), _x0()
    sampler = FewStepAverageVelocity(steps=steps)
    torch.testing.assert_close(sampler.sample(model, x0), x0 * math.exp(0.8))
    assert sampler.nfe == steps == len(model.calls)
    expected = [(k / steps, (k + 1) / steps) for k in range(steps)]
    called = [c[:2] for c in model.calls]
    assert [r for r, _ in called] == pytest.approx([r for r, _ in expected])
    assert [t for _, t in called] == pytest.approx([t for _, t in expected])


def test_one_step_is_x0_plus_u():
    x0 = _x0()

    class Affine(nn.Module):
        def forward(self, x, r, t, cond=None):
            return 2 * x + (t - r)[:, None]

    torch.testing.assert_close(FewStepAverageVelocity().sample(Affine(), x0), x0 + 2 * x0 + 1)


def test_time_grid_cond_and_dtype():
    model, x0 = ExactAverage(), _x0(torch.float32).reshape(3, 1, 2)
    cond = torch.tensor([0, 1, 2])
    sampler = FewStepAverageVelocity(time_grid=[0.0, 0.1, 1.0])
    x1 = sampler.sample(model, x0, cond)
    assert sampler.steps == sampler.nfe == 2
    assert x1.dtype == torch.float32 and x1.shape == x0.shape
    assert all(c[2] is cond for c in model.calls)
    torch.testing.assert_close(x1, x0 * math.exp(0.8))


@pytest.mark.parametrize("kwargs", [{"steps": 0}, {"steps": 1.5}, {"time_grid": [0.0, 0.0]}])
def test_rejects_bad_configuration(kwargs):
    with pytest.raises(ConfigError, match="average-velocity sampler"):
        FewStepAverageVelocity(**kwargs)
