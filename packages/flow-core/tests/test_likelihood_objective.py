import math

import pytest
import torch
from torch import nn

from flow_core.errors import ConfigError, FlowError
from flow_core.models import AffineCouplingFlow
from flow_core.objectives import MaximumLikelihood


class Affine(nn.Module):
    """z = (x − b)/s: log|det| = −d·log s."""

    def __init__(self, b, s):
        super().__init__()
        self.b, self.s = b, s

    def forward(self, x, cond=None):
        z = (x - self.b) / self.s
        return z, torch.full((x.shape[0],), -x[0].numel() * math.log(self.s))


def test_nll_of_a_known_density():
    torch.manual_seed(0)
    x = torch.randn(16, 3, dtype=torch.float64)
    b, s = 0.5, 2.0
    loss, metrics = MaximumLikelihood()(Affine(b, s), {"x1": x})
    # x ~ N(b, s²I): −log p(x)/d = ½((x − b)/s)² + log s + ½ log 2π per element.
    expected = (0.5 * ((x - b) / s) ** 2 + math.log(s) + 0.5 * math.log(2 * math.pi)).mean()
    torch.testing.assert_close(loss, expected)
    assert metrics["nll"] == pytest.approx(expected.item())
    assert metrics["bits_per_dim"] == pytest.approx(expected.item() / math.log(2))
    assert MaximumLikelihood.model_kind == "invertible"


def test_training_reaches_the_entropy_of_the_data():
    torch.manual_seed(0)
    scale = torch.tensor([0.5, 2.0])
    shift = torch.tensor([1.0, -1.0])
    flow = AffineCouplingFlow(hidden=32, layers=4)
    optimizer = torch.optim.Adam(flow.parameters(), lr=1e-2)
    objective = MaximumLikelihood()
    losses = []
    for _ in range(300):
        loss, metrics = objective(flow, {"x1": shift + scale * torch.randn(256, 2)})
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(metrics["nll"])
    entropy = (0.5 * math.log(2 * math.pi * math.e) + scale.log()).mean().item()
    assert losses[0] > entropy + 0.5
    assert sum(losses[-50:]) / 50 < entropy + 0.05


def test_errors():
    class Bad(nn.Module):
        def forward(self, x, cond=None):
            return x, torch.zeros(x.shape[0], 1)

    with pytest.raises(FlowError, match="logdet of shape"):
        MaximumLikelihood()(Bad(), {"x1": torch.randn(4, 2)})
    with pytest.raises(FlowError, match="x1"):
        MaximumLikelihood()(Bad(), {"x0": torch.randn(4, 2)})
    with pytest.raises(ConfigError, match="cond_dropout"):
        MaximumLikelihood(cond_dropout=-0.1)


def test_condition_dropout_reaches_the_flow():
    torch.manual_seed(0)
    flow = AffineCouplingFlow(num_classes=2)
    seen = []
    flow.register_forward_hook(lambda module, args, out: seen.append(args[1]))
    MaximumLikelihood(cond_dropout=1.0)(
        flow, {"x1": torch.randn(8, 2), "cond": torch.zeros(8, dtype=torch.long)}
    )
    assert torch.equal(seen[0], torch.full((8,), 2))


def test_gaussian_log_density_is_public_and_matches_torch() -> None:
    from flow_core.objectives import gaussian_log_density

    z = torch.randn(5, 2, 3)
    expected = torch.distributions.Normal(0.0, 1.0).log_prob(z).flatten(1).sum(dim=1)
    torch.testing.assert_close(gaussian_log_density(z), expected)
