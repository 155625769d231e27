import pytest
import torch
from torch import nn

from flow_core.errors import ConfigError
from flow_core.models import MLPVelocity
from flow_core.objectives import ConditionalFlowMatching, WeightedConditionalFlowMatching
from flow_core.objectives.wcfm import DEFAULT_LAM_REL, gibbs_weights, mean_pairwise_cost


class Zero(nn.Module):
    def forward(self, x, t, cond=None):
        return torch.zeros_like(x)


def test_weights_are_a_normalised_gibbs_kernel():
    torch.manual_seed(0)
    x0, x1 = torch.randn(64, 3), torch.randn(64, 3)
    lam = 2.0
    w = gibbs_weights(x0, x1, lam=lam)
    assert w.shape == (64,)
    assert w.mean().item() == pytest.approx(1.0, rel=1e-6)
    raw = torch.exp(-(x1 - x0).square().sum(dim=1) / lam)
    torch.testing.assert_close(w, raw / raw.mean())


def test_weights_do_not_underflow():
    # exp(−c/λ) underflows to 0 for every pair here; the normalised weights stay finite.
    x0, x1 = torch.zeros(4, 2), torch.tensor([[30.0, 0.0], [31.0, 0.0], [32.0, 0.0], [40.0, 0.0]])
    w = gibbs_weights(x0, x1, lam=0.5)
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


@pytest.mark.parametrize(("temperature", "dim"), [({"lam": 1e9}, 2), ({"lam_rel": 1e9}, 8)])
def test_a_huge_temperature_gives_uniform_weights_and_independent_cfm(temperature, dim):
    torch.manual_seed(0)
    x0, x1 = torch.randn(64, dim), torch.randn(64, dim) + 3.0
    torch.testing.assert_close(gibbs_weights(x0, x1, **temperature), torch.ones(64))
    model = MLPVelocity(dim=dim, hidden=16, depth=1)
    torch.manual_seed(3)
    weighted, metrics = WeightedConditionalFlowMatching(**temperature)(model, {"x1": x1})
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
    with pytest.raises(ConfigError, match="lam_rel must be > 0"):
        WeightedConditionalFlowMatching(lam_rel=-1.0)
    with pytest.raises(ConfigError, match="not both"):
        WeightedConditionalFlowMatching(lam=1.0, lam_rel=1.0)
    with pytest.raises(ValueError, match="exactly one"):
        gibbs_weights(torch.zeros(2, 1), torch.ones(2, 1))
    assert WeightedConditionalFlowMatching.model_kind == "velocity"


def test_mean_pairwise_cost_is_the_mean_of_the_cost_matrix():
    torch.manual_seed(0)
    x0, x1 = torch.randn(17, 2, 3), torch.randn(17, 2, 3) + 0.5
    full = torch.cdist(x0.flatten(1).double(), x1.flatten(1).double()).square().mean()
    assert mean_pairwise_cost(x0, x1).item() == pytest.approx(full.item(), rel=1e-5)


def test_relative_temperature_is_the_mean_cost_times_lam_rel():
    torch.manual_seed(0)
    x0, x1 = torch.randn(64, 5), torch.randn(64, 5) * 2
    eps = 0.3 * mean_pairwise_cost(x0, x1).item()
    torch.testing.assert_close(gibbs_weights(x0, x1, lam_rel=0.3), gibbs_weights(x0, x1, lam=eps))


def test_relative_weights_are_invariant_to_scaling_the_data():
    torch.manual_seed(0)
    x0, x1 = torch.randn(128, 16), torch.randn(128, 16) + 1.0
    w = gibbs_weights(x0, x1, lam_rel=0.2)
    for scale in (1e-3, 7.0, 1e3):
        torch.testing.assert_close(gibbs_weights(scale * x0, scale * x1, lam_rel=0.2), w)
    # the absolute form is not scale-free
    assert not torch.allclose(
        gibbs_weights(7 * x0, 7 * x1, lam=1.0), gibbs_weights(x0, x1, lam=1.0)
    )


def test_relative_default_keeps_the_effective_sample_size_across_dimension():
    # A fixed λ collapses onto a few pairs as the cost grows with d; λ_rel does not.
    generator = torch.Generator().manual_seed(0)
    ess_abs, ess_rel = [], []
    for dim in (2, 16, 64):
        x0 = torch.randn(256, dim, generator=generator)
        x1 = torch.rand(256, dim, generator=generator) * 2 - 1
        ess_abs.append(1 / gibbs_weights(x0, x1, lam=1.0).square().mean().item())
        ess_rel.append(1 / gibbs_weights(x0, x1, lam_rel=DEFAULT_LAM_REL).square().mean().item())
    assert ess_abs[-1] < 0.05
    assert min(ess_rel) > 0.3
    assert WeightedConditionalFlowMatching().lam_rel == DEFAULT_LAM_REL
    assert WeightedConditionalFlowMatching().lam is None
