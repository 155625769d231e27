"""FlowTurbo's refiner objective against a frozen teacher."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from flow_core.errors import ConfigError, FlowError
from flow_core.models.mlp import MLPVelocity
from flow_images.flowturbo.model import VelocityRefiner
from flow_images.flowturbo.objective import RefinerObjective
from flow_images.flowturbo.sampler import FlowTurboSampler


class RecordingTeacher(nn.Module):
    """A velocity field that records the times and labels it is called with."""

    def __init__(self, num_classes=0):
        super().__init__()
        self.net = MLPVelocity(dim=64, hidden=32, depth=2, num_classes=num_classes)
        self.calls = []

    def forward(self, x, t, cond=None):
        self.calls.append((t.clone(), None if cond is None else cond.clone()))
        return self.net(x, t, cond)


class GaussianTeacher(nn.Module):
    """The exact velocity of the linear path from N(0, I) to N(μ_c, s²I), per class c.

    x_t has mean t·μ and variance σ_t² = (1 − t)² + t²s², and
    v(x, t) = E[x1 − x0 | x_t = x] = μ + (t·s² − (1 − t))/σ_t² · (x − t·μ).
    """

    def __init__(self, num_classes, spread=0.3):
        super().__init__()
        self.means = nn.Parameter(torch.randn(num_classes + 1, 1, 8, 8).clamp(-1, 1))
        self.spread = spread

    def forward(self, x, t, cond=None):
        labels = torch.full((x.shape[0],), self.means.shape[0] - 1) if cond is None else cond
        mean = self.means[labels]
        t = t.reshape(-1, 1, 1, 1)
        variance = (1 - t) ** 2 + t**2 * self.spread**2
        return mean + (t * self.spread**2 - (1 - t)) / variance * (x - t * mean)


def _batch(n=64, num_classes=0):
    batch = {"x1": torch.randn(n, 1, 8, 8).clamp(-1, 1)}
    if num_classes:
        batch["cond"] = torch.randint(num_classes, (n,))
    return batch


def test_call_before_prepare_raises():
    objective = RefinerObjective()
    with pytest.raises(FlowError, match=r"prepare\(teacher\)"):
        objective(VelocityRefiner(), _batch())


def test_times_and_delta_stay_in_range():
    torch.manual_seed(0)
    objective = RefinerObjective(max_delta=0.3)
    objective.prepare(RecordingTeacher())
    teacher = objective.teacher
    deltas = []
    for _ in range(40):
        teacher.calls.clear()
        _, metrics = objective(VelocityRefiner(), _batch(16))
        (t, _), (later, _) = teacher.calls
        delta = metrics["delta"]
        deltas.append(delta)
        assert 0.0 <= delta <= 0.3
        assert torch.allclose(later - t, torch.full_like(t, delta), atol=1e-6)
        assert t.min() >= -1e-7
        assert later.max() <= 1.0
    assert max(deltas) > 0.2 and min(deltas) < 0.1  # one Δ per batch, spread over the range


def test_time_grid_narrows_the_refiner_times():
    torch.manual_seed(0)
    sampler = FlowTurboSampler()
    objective = RefinerObjective()
    objective.prepare(RecordingTeacher(), sampler.refiner_grid)
    lo = sampler.refiner_grid[0].item()
    for _ in range(10):
        objective.teacher.calls.clear()
        objective(VelocityRefiner(), _batch(32))
        (_, _), (later, _) = objective.teacher.calls
        assert later.min() >= lo - 1e-6
        assert later.max() <= 1.0


def test_teacher_is_a_frozen_copy():
    teacher = RecordingTeacher()
    objective = RefinerObjective()
    objective.prepare(teacher)
    assert objective.teacher is not teacher
    assert not any(p.requires_grad for p in objective.teacher.parameters())
    refiner = VelocityRefiner()
    loss, _ = objective(refiner, _batch(8))
    loss.backward()
    assert refiner.head[-1].weight.grad is not None


def test_condition_dropout_reaches_teacher_and_refiner():
    objective = RefinerObjective(cond_dropout=1.0)
    objective.prepare(RecordingTeacher(num_classes=3))
    objective(VelocityRefiner(num_classes=3), _batch(8, num_classes=3))
    for _, cond in objective.teacher.calls:
        assert torch.equal(cond, torch.full((8,), 3))


def test_loss_falls_when_training_a_refiner():
    torch.manual_seed(0)
    teacher = GaussianTeacher(num_classes=4)
    objective = RefinerObjective(cond_dropout=0.1)
    objective.prepare(teacher)
    refiner = VelocityRefiner(num_classes=4, hidden=16, blocks=1)
    optimizer = torch.optim.Adam(refiner.parameters(), lr=3e-3)
    data = torch.randn(512, 1, 8, 8).clamp(-1, 1)
    labels = torch.randint(4, (512,))
    history = []
    for step in range(100):
        rows = torch.randint(512, (64,))
        loss, metrics = objective(refiner, {"x1": data[rows], "cond": labels[rows]})
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append((metrics["loss"], metrics["reuse_loss"]))
        if step == 0:
            # An untrained refiner is exactly the reuse of the previous velocity.
            assert metrics["loss"] == pytest.approx(metrics["reuse_loss"], rel=1e-6)
    last = history[-20:]
    mean_loss = sum(h[0] for h in last) / len(last)
    mean_reuse = sum(h[1] for h in last) / len(last)
    assert mean_loss < 0.5 * mean_reuse


@pytest.mark.parametrize("max_delta", [0.0, 1.0, -0.1])
def test_bad_max_delta_raises(max_delta):
    with pytest.raises(ConfigError, match="max_delta"):
        RefinerObjective(max_delta=max_delta)


def test_bad_time_grid_and_dropout_raise():
    with pytest.raises(ConfigError, match="cond_dropout"):
        RefinerObjective(cond_dropout=1.5)
    objective = RefinerObjective(max_delta=0.12)
    with pytest.raises(ConfigError, match="time_grid"):
        objective.prepare(RecordingTeacher(), [0.5])
    with pytest.raises(ConfigError, match="time_grid"):
        objective.prepare(RecordingTeacher(), [0.5, 1.5])
    with pytest.raises(ConfigError, match="time_grid"):
        objective.prepare(RecordingTeacher(), [0.0, 0.1])


def test_batch_without_data_raises():
    objective = RefinerObjective()
    objective.prepare(RecordingTeacher())
    with pytest.raises(FlowError, match="'x1'"):
        objective(VelocityRefiner(), {"x0": torch.randn(4, 1, 8, 8)})
