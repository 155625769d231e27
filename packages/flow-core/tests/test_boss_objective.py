import pytest
import torch
from torch import nn

from flow_core.errors import ConfigError, FlowError
from flow_core.models import MLPVelocity
from flow_core.objectives import BossStraightening
from flow_core.objectives.boss import reference_states
from flow_core.samplers import Euler

M, Q = torch.tensor([3.0, -2.0]), 0.5
GRID = [0.0, 0.5, 0.8, 1.0]


class GaussianVelocity(nn.Module):
    """Exact field from N(0, I) to N(m, q²I): curved paths, so few Euler steps are poor."""

    def forward(self, x, t, cond=None):
        t = t[:, None]
        var = (1 - t) ** 2 + t**2 * Q**2
        return M + (t * Q**2 - (1 - t)) / var * (x - t * M)


class Affine(nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.weight = nn.Parameter(torch.tensor(scale))

    def forward(self, x, t, cond=None):
        return self.weight * x


def test_reference_states_follow_the_fine_euler_solve():
    x0 = torch.randn(8, 2, generator=torch.Generator().manual_seed(0))
    states = reference_states(GaussianVelocity(), x0, [0.0, 0.25, 1.0], steps=100)
    assert states.shape == (8, 3, 2)
    torch.testing.assert_close(states[:, 0], x0)
    fine_25 = Euler(steps=25).sample(GaussianVelocity(), x0)  # reaches t = 1 in 25 steps
    quarter = Euler(time_grid=torch.linspace(0, 0.25, 26)).sample(GaussianVelocity(), x0)
    torch.testing.assert_close(states[:, 1], quarter)
    full = Euler(steps=100).sample(GaussianVelocity(), x0)
    torch.testing.assert_close(states[:, 2], full, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(states[:, 2], fine_25)


def test_chord_regression_on_a_linear_field():
    # v = a·x has Euler chords (1 + a·h_fine)^n − 1 per unit step; a student equal to the
    # teacher misses them, and the loss equals that miss exactly.
    teacher, student = Affine(0.5), Affine(0.5)
    objective = BossStraightening(reference_steps=10)
    objective.prepare(teacher, [0.0, 1.0])
    x0 = torch.randn(16, 2)
    loss, _ = objective(student, {"x0": x0})
    chord = ((1 + 0.05) ** 10 - 1) * x0
    torch.testing.assert_close(loss, (0.5 * x0 - chord).square().mean())


def test_prepare_freezes_a_copy_of_the_teacher():
    teacher = Affine(1.0)
    objective = BossStraightening()
    objective.prepare(teacher, GRID)
    with torch.no_grad():
        teacher.weight.fill_(5.0)  # later changes to the model do not reach the reference
    assert objective.teacher is not teacher
    assert objective.teacher.weight.item() == 1.0 and not objective.teacher.weight.requires_grad


def test_precomputed_trajectories_are_used():
    objective = BossStraightening()
    objective.prepare(GaussianVelocity(), GRID)
    x0 = torch.randn(8, 2)
    states = reference_states(GaussianVelocity(), x0, GRID)
    torch.manual_seed(0)
    a, _ = objective(Affine(0.3), {"x0": x0})
    torch.manual_seed(0)
    b, _ = objective(Affine(0.3), {"x0": x0, "trajectory": states})
    torch.testing.assert_close(a, b)
    with pytest.raises(FlowError, match="trajectory"):
        objective(Affine(0.3), {"x0": x0, "trajectory": states[:, :2]})


def test_straightening_improves_few_step_sampling():
    torch.manual_seed(0)
    teacher = GaussianVelocity()
    student = MLPVelocity(hidden=64, depth=2)
    optimizer = torch.optim.Adam(student.parameters(), lr=3e-3)
    objective = BossStraightening(reference_steps=50)
    objective.prepare(teacher, GRID)
    losses = []
    for _ in range(300):
        loss, metrics = objective(student, {"x0": torch.randn(256, 2)})
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(metrics["loss"])
    assert sum(losses[-30:]) / 30 < 0.1 * sum(losses[:10]) / 10
    x0 = torch.randn(1000, 2)
    few = Euler(time_grid=GRID)
    with torch.no_grad():
        reference = Euler(steps=50).sample(teacher, x0)
        teacher_error = (few.sample(teacher, x0) - reference).norm(dim=1).mean()
        student_error = (few.sample(student, x0) - reference).norm(dim=1).mean()
    assert student_error < 0.3 * teacher_error


def test_protocol_errors():
    objective = BossStraightening()
    with pytest.raises(FlowError, match="prepare"):
        objective(Affine(1.0), {"x0": torch.randn(2, 2)})
    for grid in ([0.0], [0.0, 0.6, 0.5, 1.0], [0.1, 1.0], [0.0, 0.9]):
        with pytest.raises(ConfigError, match="time_grid"):
            objective.prepare(Affine(1.0), grid)
    objective.prepare(Affine(1.0), GRID)
    with pytest.raises(FlowError, match="x0"):
        objective(Affine(1.0), {"cond": torch.zeros(2)})
    with pytest.raises(ConfigError, match="reference_steps"):
        BossStraightening(reference_steps=0)
    assert BossStraightening.model_kind == "velocity"
