import pytest
import torch
from torch import nn

from flow_core.errors import ConfigError
from flow_core.models import MLPAverageVelocity
from flow_core.objectives import SplitMeanFlow
from flow_core.objectives.splitmeanflow import split_target

M, Q = torch.tensor([3.0, -2.0], dtype=torch.float64), 0.5


class ExactAverage(nn.Module):
    """Exact u for the deterministic coupling x1 = m + q·x0 (see test_meanflow)."""

    def __init__(self, scale=1.0):
        super().__init__()
        self.scale = scale

    def forward(self, x, r, t, cond=None):
        r = r[:, None]
        return self.scale * (M + (Q - 1) * (x - r * M) / (1 - r + r * Q))


class GaussianAverage(nn.Module):
    """Exact u for N(0, I) → N(m, q²I) with the independent coupling (curved trajectories).

    The flow map is x_t = t·m + s_t/s_r·(x_r − r·m) with s_t = √((1 − t)² + t²q²).
    """

    def forward(self, x, r, t, cond=None):
        r, t = r[:, None], t[:, None]
        s_r = ((1 - r) ** 2 + r**2 * Q**2).sqrt()
        s_t = ((1 - t) ** 2 + t**2 * Q**2).sqrt()
        x_t = t * M + s_t / s_r * (x - r * M)
        length = t - r
        safe = torch.where(length > 0, length, torch.ones_like(length))
        velocity = M + (r * Q**2 - (1 - r)) / s_r**2 * (x - r * M)
        return torch.where(length > 0, (x_t - x) / safe, velocity)


def test_split_target_satisfies_the_semigroup_identity():
    # For an exact flow map, splitting [r, t] anywhere reproduces u(x_r, r, t).
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(256, 2, dtype=torch.float64, generator=generator)
    r = torch.rand(256, dtype=torch.float64, generator=generator) * 0.8
    t = r + torch.rand(256, dtype=torch.float64, generator=generator) * (1 - r)
    lam = torch.rand(256, dtype=torch.float64, generator=generator)
    for exact in (ExactAverage(), GaussianAverage()):
        target = split_target(exact, x, r, t, lam)
        torch.testing.assert_close(target, exact(x, r, t), atol=1e-12, rtol=1e-12)
    # A field that is not a flow map fails it.
    wrong = ExactAverage(scale=1.2)
    assert (split_target(wrong, x, r, t, lam) - wrong(x, r, t)).abs().max().item() > 1e-2


def test_target_carries_no_gradient():
    model = MLPAverageVelocity(hidden=8)
    x, r = torch.randn(4, 2), torch.zeros(4)
    assert not split_target(model, x, r, torch.ones(4), torch.rand(4)).requires_grad


def test_loss_vanishes_at_the_exact_average_velocity():
    x0 = torch.randn(512, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    _, metrics = SplitMeanFlow()(ExactAverage(), {"x0": x0, "x1": M + Q * x0})
    assert metrics["mse"] < 1e-20
    _, off = SplitMeanFlow()(ExactAverage(scale=1.1), {"x0": x0, "x1": M + Q * x0})
    assert off["mse"] > 1e-2


def test_flow_ratio_one_is_flow_matching():
    class Zero(nn.Module):
        def forward(self, x, r, t, cond=None):
            return torch.zeros_like(x)

    torch.manual_seed(0)
    x0, x1 = torch.randn(64, 2), torch.randn(64, 2)
    loss, _ = SplitMeanFlow(flow_ratio=1.0)(Zero(), {"x0": x0, "x1": x1})
    torch.testing.assert_close(loss, (x1 - x0).square().sum(dim=1).mean())


def test_split_meanflow_trains_a_one_step_generator():
    torch.manual_seed(0)
    m, q = torch.tensor([3.0, -2.0]), 0.5
    model = MLPAverageVelocity(hidden=64, depth=3)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.95))
    objective = SplitMeanFlow()
    mse = []
    for _ in range(300):
        loss, metrics = objective(model, {"x1": m + q * torch.randn(256, 2)})
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        mse.append(metrics["mse"])
    assert sum(mse[-50:]) / 50 < 0.35 * sum(mse[:10]) / 10
    x0 = torch.randn(2000, 2)
    with torch.no_grad():
        x1 = x0 + model(x0, torch.zeros(2000), torch.ones(2000))
    assert (x1.mean(dim=0) - m).norm().item() < 0.25 * m.norm().item()


def test_config_errors():
    assert SplitMeanFlow.model_kind == "average-velocity"
    for kwargs, match in [
        ({"flow_ratio": -0.1}, "flow_ratio"),
        ({"adaptive_power": -1.0}, "adaptive_power"),
        ({"eps": -1.0}, "eps"),
        ({"cond_dropout": 2.0}, "cond_dropout"),
    ]:
        with pytest.raises(ConfigError, match=match):
            SplitMeanFlow(**kwargs)
