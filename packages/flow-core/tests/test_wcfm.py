import pytest
import torch
from torch import nn

from flow_core.errors import ConfigError
from flow_core.models import MLPVelocity
from flow_core.objectives import ConditionalFlowMatching, WeightedConditionalFlowMatching
from flow_core.objectives.wcfm import gibbs_weights


class Zero(nn.Module):
    def forward(self, x, t, cond=None):
        return torch.zeros_like(x)


def test_weights_are_a_normalised_gibbs_kernel():
    torch.manual_seed(0)
    x0, x1 = torch.randn(64, 3), torch.randn(64, 3)
    lam = 2.0
    w = gibbs_weights(x0, x1, lam)
    assert w.shape == (64,)
    assert w.mean().item() == pytest.approx(1.0, rel=1e-6)
    raw = torch.exp(-(x1 - x0).square().sum(dim=1) / lam)
    torch.testing.assert_close(w, raw / raw.mean())


def test_weights_do_not_underflow():
    # exp(−c/λ) underflows to 0 for every pair here; the normalised weights stay finite.
    x0, x1 = torch.zeros(4, 2), torch.tensor([[30.0, 0.0], [31.0, 0.0], [32.0, 0.0], [40.0, 0.0]])
    w = gibbs_weights(x0, x1, 0.5)
    assert bool(torch.isfinite(w).all()) and w.sum().item() == pytest.approx(4.0)
    assert w[0].item() == pytest.approx(4.0, rel=1e-6)  # the cheapest pair takes all the weight


def test_loss_and_effective_sample_size():
    torch.manual_seed(0)
    x0, x1 = torch.randn(32, 2), torch.randn(32, 2) + 1.0
    lam = 3.0
    loss, metrics = WeightedConditionalFlowMatching(lam=lam)(Zero(), {"x0": x0, "x1": x1})
    w = torch.exp(-(x1 - x0).square().sum(dim=1) / lam)
    per_sample = (x1 - x0).square().mean(dim=1)
    torch.testing.assert_close(loss, (w * per_sample).sum() / w.sum())
    ess = (w.sum() ** 2 / w.square().sum() / 32).item()
    assert metrics["ess"] == pytest.approx(ess, rel=1e-5)
    assert 0 < metrics["ess"] < 1


def test_large_lambda_recovers_independent_cfm():
    x1 = torch.randn(64, 2)
    model = MLPVelocity(hidden=16, depth=1)
    torch.manual_seed(3)
    weighted, metrics = WeightedConditionalFlowMatching(lam=1e9)(model, {"x1": x1})
    torch.manual_seed(3)
    plain, _ = ConditionalFlowMatching()(model, {"x1": x1})
    torch.testing.assert_close(weighted, plain)
    assert metrics["ess"] == pytest.approx(1.0, abs=1e-6)


def test_small_lambda_lowers_the_effective_sample_size():
    batch = {"x1": torch.randn(256, 2, generator=torch.Generator().manual_seed(1)) + 2.0}
    ess = []
    for lam in (100.0, 10.0, 1.0):
        torch.manual_seed(0)
        ess.append(WeightedConditionalFlowMatching(lam=lam)(Zero(), batch)[1]["ess"])
    assert ess[0] > ess[1] > ess[2]


def test_loss_falls():
    torch.manual_seed(0)
    m, q = torch.tensor([3.0, -2.0]), 0.5
    model = MLPVelocity(hidden=32, depth=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    objective = WeightedConditionalFlowMatching(lam=10.0)
    losses = []
    for _ in range(200):
        loss, metrics = objective(model, {"x1": m + q * torch.randn(256, 2)})
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(metrics["loss"])
    assert sum(losses[-30:]) / 30 < 0.2 * sum(losses[:10]) / 10


def test_config_errors():
    with pytest.raises(ConfigError, match="lam must be > 0"):
        WeightedConditionalFlowMatching(lam=0.0)
    assert WeightedConditionalFlowMatching.model_kind == "velocity"
