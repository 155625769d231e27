import pytest
import torch
from torch import nn

from flow_core.errors import ConfigError, FlowError
from flow_core.models import MLPVelocity
from flow_core.objectives import ConditionalFlowMatching, RectifiedFlowPlusPlus
from flow_core.objectives.reflow import generate_pairs, pair_batches, straightness
from flow_core.objectives.timesteps import sample_time
from flow_core.samplers import Euler

M, Q = torch.tensor([3.0, -2.0]), 0.5


class GaussianVelocity(nn.Module):
    """Exact 1-RF field from N(0, I) to N(m, q²I): curved trajectories x_t = t·m + s_t·x0."""

    def forward(self, x, t, cond=None):
        t = t[:, None]
        var = (1 - t) ** 2 + t**2 * Q**2
        return M + (t * Q**2 - (1 - t)) / var * (x - t * M)


class Constant(nn.Module):
    def __init__(self, value):
        super().__init__()
        self.value = value

    def forward(self, x, t, cond=None):
        return self.value.expand_as(x)


def euler_samples(model, x0, steps=100):
    with torch.no_grad():
        return Euler(steps=steps).sample(model, x0)


def test_generate_pairs_shapes_batches_and_conditions():
    sampler = Euler(steps=10)
    cond = torch.arange(10)
    pairs = generate_pairs(
        GaussianVelocity(), sampler, 10, 4, 2, torch.Generator().manual_seed(0), cond=cond
    )
    assert pairs["x0"].shape == pairs["x1"].shape == (10, 2)
    assert torch.equal(pairs["cond"], cond)
    torch.testing.assert_close(pairs["x1"], euler_samples(GaussianVelocity(), pairs["x0"], 10))
    image = generate_pairs(Constant(torch.ones(())), sampler, 3, 2, (1, 2, 2), torch.Generator())
    assert image["x1"].shape == (3, 1, 2, 2)
    torch.testing.assert_close(image["x1"], image["x0"] + 1)
    with pytest.raises(ConfigError, match="batch_size"):
        generate_pairs(GaussianVelocity(), sampler, 0, 4, 2, torch.Generator())
    with pytest.raises(FlowError, match="cond must have 10 rows"):
        generate_pairs(GaussianVelocity(), sampler, 10, 4, 2, torch.Generator(), cond=cond[:5])


def test_pair_batches_draw_matching_rows():
    pairs = {"x0": torch.arange(20.0)[:, None], "x1": 2 * torch.arange(20.0)[:, None]}
    batch = pair_batches(pairs, 8)(torch.Generator().manual_seed(0))
    assert batch["x0"].shape == (8, 1)
    torch.testing.assert_close(batch["x1"], 2 * batch["x0"])
    with pytest.raises(FlowError, match="same number of rows"):
        pair_batches({"x0": torch.zeros(3, 1), "x1": torch.zeros(4, 1)}, 2)


def test_straightness_of_known_fields():
    x0 = torch.randn(500, 2, generator=torch.Generator().manual_seed(0))
    assert straightness(Constant(torch.tensor([1.0, -2.0])), x0) == pytest.approx(0.0, abs=1e-10)
    # Along x_t = t·m + s_t·x0 the chord is m + (q − 1)·x0 and v = m + ṡ_t·x0, so
    # S = E‖x0‖²·∫(q − 1 − ṡ_t)² dt > 0.
    curved = straightness(GaussianVelocity(), x0, steps=200)
    t = torch.linspace(0, 1, 20001)[:-1] + 0.5 / 20000
    s_dot = (t * Q**2 - (1 - t)) / ((1 - t) ** 2 + t**2 * Q**2).sqrt()
    expected = x0.square().sum(dim=1).mean() * ((Q - 1 - s_dot) ** 2).mean()
    assert curved == pytest.approx(expected.item(), rel=0.05)


def test_reflow_keeps_the_marginal_and_straightens():
    torch.manual_seed(0)
    teacher = GaussianVelocity()
    pairs = generate_pairs(
        teacher, Euler(steps=100), 4000, 1000, 2, torch.Generator().manual_seed(1)
    )
    # The pairs' data marginal is the target N(m, q²I).
    assert (pairs["x1"].mean(dim=0) - M).abs().max().item() < 0.05
    torch.testing.assert_close(torch.cov(pairs["x1"].T), Q**2 * torch.eye(2), atol=0.02, rtol=0)
    student = MLPVelocity(hidden=64, depth=2)
    optimizer = torch.optim.Adam(student.parameters(), lr=3e-3)
    objective, next_batch = ConditionalFlowMatching(), pair_batches(pairs, 256)
    generator = torch.Generator().manual_seed(2)
    for _ in range(400):
        loss, _ = objective(student, next_batch(generator))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    x0 = torch.randn(2000, 2, generator=torch.Generator().manual_seed(3))
    assert straightness(student, x0) < 0.3 * straightness(teacher, x0)
    x1 = euler_samples(student, x0)
    assert (x1.mean(dim=0) - M).abs().max().item() < 0.1
    torch.testing.assert_close(torch.cov(x1.T), Q**2 * torch.eye(2), atol=0.05, rtol=0)
    # Straighter paths: one Euler step lands far nearer the 100-step solution than before.
    student_gap = (euler_samples(student, x0, steps=1) - x1).norm(dim=1).mean()
    teacher_gap = (euler_samples(teacher, x0, steps=1) - euler_samples(teacher, x0)).norm(dim=1)
    assert student_gap < 0.3 * teacher_gap.mean()


def test_rf_pp_loss_terms():
    torch.manual_seed(0)
    x0, x1 = torch.randn(32, 4), torch.randn(32, 4)
    seen = []

    def perceptual(x1_hat, data):
        seen.append((x1_hat, data))
        return (x1_hat - data).abs().mean(dim=1)

    torch.manual_seed(1)
    loss, metrics = RectifiedFlowPlusPlus(perceptual=perceptual)(
        Constant(torch.zeros(())), {"x0": x0, "x1": x1}
    )
    torch.manual_seed(1)
    t = sample_time("u-shaped", 32)
    c = 0.00054 * 4
    huber = (((x1 - x0).square().sum(dim=1) + c**2).sqrt() - c) / 4
    x_t = (1 - t[:, None]) * x0 + t[:, None] * x1
    ((x1_hat, data),) = seen
    torch.testing.assert_close(x1_hat, x_t)  # x̂1 = x_t + (1 − t)·v with v = 0
    assert data is x1
    expected = t * huber + (x_t - x1).abs().mean(dim=1)
    torch.testing.assert_close(loss, expected.mean())
    assert metrics["regression"] == pytest.approx((t * huber).mean().item(), rel=1e-5)
    assert "perceptual" in metrics


def test_rf_pp_options_and_errors():
    torch.manual_seed(0)
    x0, x1 = torch.randn(16, 2), torch.randn(16, 2)
    loss, _ = RectifiedFlowPlusPlus(time_weight=False, loss="squared")(
        Constant(torch.zeros(())), {"x0": x0, "x1": x1}
    )
    torch.testing.assert_close(loss, (x1 - x0).square().mean())
    with pytest.raises(FlowError, match="shape"):
        RectifiedFlowPlusPlus(perceptual=lambda a, b: (a - b).sum())(
            Constant(torch.zeros(())), {"x0": x0, "x1": x1}
        )
    with pytest.raises(ConfigError, match="callable"):
        RectifiedFlowPlusPlus(perceptual=3)
    assert RectifiedFlowPlusPlus.model_kind == "velocity"


def test_rf_pp_loss_falls_on_pairs():
    torch.manual_seed(0)
    x0 = torch.randn(2000, 2)
    pairs = {"x0": x0, "x1": M + Q * x0}
    model = MLPVelocity(hidden=32, depth=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    objective, next_batch = RectifiedFlowPlusPlus(), pair_batches(pairs, 256)
    generator = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(200):
        loss, metrics = objective(model, next_batch(generator))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(metrics["loss"])
    assert sum(losses[-30:]) / 30 < 0.2 * sum(losses[:10]) / 10
