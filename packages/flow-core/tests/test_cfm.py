import math

import pytest
import torch
from torch import nn

from flow_core.errors import ConfigError, FlowError
from flow_core.models import MLPVelocity
from flow_core.objectives import ConditionalFlowMatching
from flow_core.paths.affine import AffinePath
from flow_core.protocols import Objective


class Recorder(nn.Module):
    """Returns zeros and keeps its inputs."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, x, t, cond=None):
        self.calls.append((x.detach().clone(), t.detach().clone(), cond))
        return torch.zeros_like(x)


class GaussianVelocity(nn.Module):
    """Exact marginal velocity from N(0, I) to N(m, q² I) on the linear path."""

    def __init__(self, m, q, scale=1.0):
        super().__init__()
        self.m, self.q, self.scale = m, q, scale

    def forward(self, x, t, cond=None):
        t = t[:, None]
        var = (1 - t) ** 2 + t**2 * self.q**2
        v = self.m + (t * self.q**2 - (1 - t)) / var * (x - t * self.m)
        return self.scale * v


def test_is_an_objective_and_rejects_negative_sigma():
    assert isinstance(ConditionalFlowMatching(), Objective)
    with pytest.raises(ConfigError, match="sigma"):
        ConditionalFlowMatching(sigma=-0.1)


def test_inputs_to_model_and_loss_value():
    torch.manual_seed(0)
    x0, x1 = torch.randn(8, 3), torch.randn(8, 3) + 2.0
    cond = torch.arange(8)
    model = Recorder()
    loss, metrics = ConditionalFlowMatching()(model, {"x0": x0, "x1": x1, "cond": cond})
    ((x_t, t, seen_cond),) = model.calls
    assert t.shape == (8,) and bool(((t >= 0) & (t <= 1)).all())
    torch.testing.assert_close(x_t, (1 - t[:, None]) * x0 + t[:, None] * x1)
    assert seen_cond is cond
    torch.testing.assert_close(loss, (x1 - x0).square().mean())
    assert metrics == {"loss": pytest.approx(loss.item())}
    assert isinstance(metrics["loss"], float)


def test_sigma_perturbs_the_path_point():
    torch.manual_seed(0)
    x0, x1 = torch.randn(4096, 2), torch.randn(4096, 2)
    model = Recorder()
    ConditionalFlowMatching(sigma=0.3)(model, {"x0": x0, "x1": x1})
    ((x_t, t, _),) = model.calls
    residual = x_t - ((1 - t[:, None]) * x0 + t[:, None] * x1)
    assert residual.std().item() == pytest.approx(0.3, rel=0.05)


def test_draws_standard_normal_source_when_absent():
    torch.manual_seed(0)
    x1 = torch.zeros(4096, 2)
    model = Recorder()
    ConditionalFlowMatching()(model, {"x1": x1})
    ((x_t, t, _),) = model.calls
    x0 = x_t / (1 - t[:, None])  # x_t = (1 − t) x0 when x1 = 0
    assert x0.mean().abs().item() < 0.05
    assert x0.std().item() == pytest.approx(1.0, rel=0.05)


def test_same_seed_same_loss():
    x1 = torch.randn(32, 2)
    model = MLPVelocity(hidden=16, depth=1)
    losses = []
    for _ in range(2):
        torch.manual_seed(7)
        losses.append(ConditionalFlowMatching(sigma=0.1)(model, {"x1": x1})[0])
    torch.testing.assert_close(losses[0], losses[1])


def test_bad_batches_raise():
    objective = ConditionalFlowMatching()
    with pytest.raises(FlowError, match="x1"):
        objective(Recorder(), {"x0": torch.zeros(2, 2)})
    with pytest.raises(FlowError, match="must match"):
        objective(Recorder(), {"x0": torch.zeros(2, 3), "x1": torch.zeros(2, 2)})


def test_exact_marginal_velocity_minimises_the_loss():
    # The CFM minimiser is E[x1 − x0 | x_t]; scaling the exact field must raise the loss.
    m, q = torch.tensor([3.0, -2.0]), 0.5
    objective = ConditionalFlowMatching()

    def mean_loss(model):
        torch.manual_seed(0)
        x1 = m + q * torch.randn(200_000, 2)
        return objective(model, {"x1": x1})[1]["loss"]

    best = mean_loss(GaussianVelocity(m, q))
    assert best < mean_loss(GaussianVelocity(m, q, scale=0.9))
    assert best < mean_loss(GaussianVelocity(m, q, scale=1.1))


def test_training_an_mlp_lowers_the_loss_towards_the_optimum():
    torch.manual_seed(0)
    m, q = torch.tensor([3.0, -2.0]), 0.5
    model = MLPVelocity(hidden=64, depth=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    objective = ConditionalFlowMatching()
    losses = []
    for _ in range(300):
        loss, metrics = objective(model, {"x1": m + q * torch.randn(256, 2)})
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(metrics["loss"])
    torch.manual_seed(1)
    x1 = m + q * torch.randn(100_000, 2)
    optimum = objective(GaussianVelocity(m, q), {"x1": x1})[1]["loss"]
    first, last = sum(losses[:20]) / 20, sum(losses[-50:]) / 50
    assert last < 0.25 * first
    assert last < 1.15 * optimum


def test_model_kind_and_registered_class_defaults():
    assert ConditionalFlowMatching.model_kind == "velocity"
    objective = ConditionalFlowMatching()
    assert objective.coupling == "independent" and objective.loss == "squared"


def test_condition_dropout_uses_the_null_label():
    torch.manual_seed(0)
    model = MLPVelocity(num_classes=3, hidden=8)
    seen = []
    model.register_forward_hook(lambda module, args, out: seen.append(args[2]))
    labels = torch.randint(0, 3, (4000,))
    ConditionalFlowMatching(cond_dropout=0.3)(model, {"x1": torch.randn(4000, 2), "cond": labels})
    (cond,) = seen
    dropped = cond == model.null_label
    assert cond.dtype == labels.dtype
    assert dropped.float().mean().item() == pytest.approx(0.3, abs=0.03)
    assert torch.equal(cond[~dropped], labels[~dropped])


def test_condition_dropout_extremes_and_embeddings():
    model = Recorder()
    embeddings = torch.randn(6, 4)
    ConditionalFlowMatching(cond_dropout=1.0)(model, {"x1": torch.randn(6, 2), "cond": embeddings})
    ConditionalFlowMatching(cond_dropout=0.0)(model, {"x1": torch.randn(6, 2), "cond": embeddings})
    assert torch.equal(model.calls[0][2], torch.zeros(6, 4))  # float conditions drop to zeros
    assert model.calls[1][2] is embeddings
    with pytest.raises(FlowError, match="null_label"):
        ConditionalFlowMatching(cond_dropout=0.5)(
            Recorder(), {"x1": torch.randn(6, 2), "cond": torch.arange(6)}
        )
    with pytest.raises(ConfigError, match="cond_dropout"):
        ConditionalFlowMatching(cond_dropout=1.5)


def test_time_density_option():
    torch.manual_seed(0)
    model = Recorder()
    ConditionalFlowMatching(time_density="logit-normal:mean=2.0")(
        model, {"x1": torch.randn(4000, 2)}
    )
    ((_, t, _),) = model.calls
    assert t.median().item() == pytest.approx(1 / (1 + math.exp(-2.0)), abs=0.02)
    with pytest.raises(ConfigError, match="unknown time density"):
        ConditionalFlowMatching(time_density="beta")


def test_pseudo_huber_loss_option():
    torch.manual_seed(0)
    x0, x1 = torch.randn(8, 3), torch.randn(8, 3)
    loss, _ = ConditionalFlowMatching(loss="pseudo-huber")(Recorder(), {"x0": x0, "x1": x1})
    c = 0.00054 * 3
    expected = (((x1 - x0).square().sum(dim=1) + c**2).sqrt() - c) / 3
    torch.testing.assert_close(loss, expected.mean())
    with pytest.raises(ConfigError, match="unknown loss"):
        ConditionalFlowMatching(loss="l1")


def test_affine_path_option():
    torch.manual_seed(0)
    x0, x1 = torch.randn(16, 2), torch.randn(16, 2)
    model = Recorder()
    loss, _ = ConditionalFlowMatching(path="cosine")(model, {"x0": x0, "x1": x1})
    ((x_t, t, _),) = model.calls
    path = AffinePath("cosine")
    torch.testing.assert_close(x_t, path.interpolate(x0, x1, t))
    torch.testing.assert_close(loss, path.target_velocity(x0, x1, t).square().mean())
    with pytest.raises(ConfigError, match="schedule"):
        ConditionalFlowMatching(path="zigzag")
