"""Dispersive losses: collapsed embeddings score worse than spread ones; gradients flow."""

import pytest
import torch

from flow_core.errors import ConfigError
from flow_core.objectives import ConditionalFlowMatching as CFM
from flow_core.objectives import MeanFlow
from flow_robotics.dispersive.loss import VARIANTS, dispersive_loss
from flow_robotics.dispersive.objective import Dispersive
from flow_robotics.networks.policy import PolicyAverageVelocity, PolicyVelocity


def _embeddings() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    point = torch.randn(1, 16, generator=generator)
    collapsed = point + 1e-3 * torch.randn(64, 16, generator=generator)
    spread = torch.randn(64, 16, generator=generator)
    return collapsed, spread


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_collapsed_embeddings_cost_more_than_spread_ones(variant):
    collapsed, spread = _embeddings()
    high = dispersive_loss(collapsed, variant, tau=0.5)
    low = dispersive_loss(spread, variant, tau=0.5)
    assert torch.isfinite(high) and torch.isfinite(low)
    assert high > low + 0.1


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_gradient_descent_on_the_loss_spreads_a_narrow_batch(variant):
    generator = torch.Generator().manual_seed(2)
    z = (1.0 + 0.1 * torch.randn(64, 16, generator=generator)).requires_grad_(True)
    before_loss = dispersive_loss(z, variant, tau=0.5).item()
    before = torch.pdist(z).mean().item()
    optimiser = torch.optim.SGD([z], lr=0.5)
    for _ in range(30):
        optimiser.zero_grad()
        dispersive_loss(z, variant, tau=0.5).backward()
        optimiser.step()
    assert dispersive_loss(z, variant, tau=0.5).item() < before_loss
    assert torch.pdist(z).mean().item() > before


def test_bad_settings_are_refused():
    z = torch.randn(8, 4)
    with pytest.raises(ConfigError, match="unknown dispersive variant 'l3'"):
        dispersive_loss(z, "l3")
    with pytest.raises(ConfigError, match="temperature"):
        dispersive_loss(z, "hinge", tau=0.0)
    with pytest.raises(ConfigError, match="batch of >= 2"):
        dispersive_loss(z[:1], "hinge")
    with pytest.raises(ConfigError, match="dispersive_layer"):
        Dispersive(CFM(), "hinge", 0.5, 0.5, "middle")


def _batch(obs_dim: int = 5, action_dim: int = 2, history: int = 2, chunk: int = 3):
    generator = torch.Generator().manual_seed(1)
    return {
        "x1": torch.rand(16, chunk * action_dim, generator=generator) * 2 - 1,
        "cond": torch.randn(16, history * obs_dim, generator=generator),
    }


@pytest.mark.parametrize(
    ("network", "objective"), [(PolicyAverageVelocity, MeanFlow), (PolicyVelocity, CFM)]
)
@pytest.mark.parametrize("layer", ["early", "mid", "late", "all"])
def test_the_dispersive_term_reaches_the_encoder(network, objective, layer):
    # the reference code computed this term under no_grad (dm1-release#3): ours must train
    kwargs = {"obs_dim": 5, "action_dim": 2, "history": 2, "chunk": 3, "hidden": 16}
    model = network(**kwargs, embedding=8)
    batch = _batch()
    grads = {}
    for weight in (0.0, 1.0):
        model.zero_grad()
        torch.manual_seed(0)
        wrapped = Dispersive(objective(), "infonce-l2", weight, 0.5, layer)
        loss, metrics = wrapped(model, batch)
        loss.backward()
        grads[weight] = model.encoder.early[0].weight.grad.clone()
        assert metrics["dispersive"] == pytest.approx(metrics["dispersive"])  # a finite number
    difference = (grads[1.0] - grads[0.0]).abs().max().item()
    assert difference > 1e-6
