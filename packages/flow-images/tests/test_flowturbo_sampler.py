"""FlowTurbo's sampler: the NFE of each schedule, its phases, guidance and errors (eager)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from flow_core.errors import ConfigError, FlowError
from flow_core.models.mlp import MLPVelocity
from flow_core.samplers.fixed_step import Heun
from flow_core.samplers.guidance import ClassifierFreeGuidance
from flow_images.flowturbo.model import FlowTurboModel, VelocityRefiner
from flow_images.flowturbo.sampler import FlowTurboSampler


class Counting(FlowTurboModel):
    """A FlowTurboModel that counts predictor and refiner calls and records their inputs."""

    def __init__(self, predictor, refiner):
        super().__init__(predictor, refiner)
        self.predictions = []
        self.refinements = []

    def forward(self, x, t, cond=None):
        out = super().forward(x, t, cond)
        self.predictions.append((x, t, out))
        return out

    def refine(self, x, t, v_prev, cond=None):
        self.refinements.append((x, t, v_prev, cond))
        return super().refine(x, t, v_prev, cond)


class Constant(nn.Module):
    """The velocity a + b·t (per class when labels are given): straight or parabolic paths."""

    def __init__(self, b=0.0):
        super().__init__()
        self.a = torch.linspace(-1, 1, 64).reshape(1, 1, 8, 8)
        self.b = b

    def forward(self, x, t, cond=None):
        shift = 0.0 if cond is None else cond.reshape(-1, 1, 1, 1).float()
        return (self.a + shift + self.b * t.reshape(-1, 1, 1, 1)).expand_as(x)


def _refiner(num_classes=0, trained=True):
    refiner = VelocityRefiner(num_classes=num_classes, hidden=16, blocks=1)
    if trained:
        torch.nn.init.normal_(refiner.head[-1].weight, std=0.05)
    return refiner


def _predictor(num_classes=0):
    torch.manual_seed(1)
    return MLPVelocity(dim=64, hidden=32, depth=2, num_classes=num_classes)


def _reference(model, x0, heun, pseudo, refine, cond=None):
    """The paper's three phases, written out step by step (h = 1/K)."""
    total = heun + pseudo + refine
    h = 1.0 / total
    x, carried = x0, None
    for k in range(total):
        now = torch.full((x.shape[0],), k / total)
        later = torch.full((x.shape[0],), (k + 1) / total)
        if k < heun:
            v = model(x, now, cond)
            v_end = model(x + h * v, later, cond)
            x, carried = x + h / 2 * (v + v_end), v_end
        elif k < heun + pseudo:
            v = model(x, now, cond) if carried is None else carried
            v_end = model(x + h * v, later, cond)
            x, carried = x + h / 2 * (v + v_end), v_end
        else:
            v = model(x, now, cond) if carried is None else carried
            carried = model.refine(x, now, v, cond)
            x = x + h * carried
    return x


@pytest.mark.parametrize(
    ("schedule", "nfe"),
    [
        ((1, 5, 3), 7),
        ((0, 6, 0), 7),
        ((0, 1, 0), 2),
        ((3, 0, 0), 6),
        ((2, 3, 1), 7),
        ((0, 0, 4), 1),
        ((0, 2, 2), 3),
        ((1, 0, 2), 2),
    ],
)
def test_nfe_of_each_schedule(schedule, nfe):
    model = Counting(_predictor(), _refiner())
    sampler = FlowTurboSampler(*schedule)
    with torch.no_grad():
        sampler.sample(model, torch.randn(3, 1, 8, 8))
    assert sampler.nfe == nfe == len(model.predictions) == sampler.expected_nfe
    assert sampler.refiner_calls == schedule[2] == len(model.refinements)


def test_pure_pseudo_corrector_costs_steps_plus_one():
    for steps in (1, 4, 9):
        sampler = FlowTurboSampler(heun_steps=0, pseudo_steps=steps, refiner_steps=0)
        with torch.no_grad():
            sampler.sample(_predictor(), torch.randn(2, 1, 8, 8))
        assert sampler.nfe == steps + 1


@pytest.mark.parametrize("steps", [1, 3, 8])
def test_heun_phase_equals_core_heun(steps):
    predictor = _predictor()
    x0 = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        ours = FlowTurboSampler(heun_steps=steps, pseudo_steps=0, refiner_steps=0).sample(
            predictor, x0
        )
        core = Heun(steps=steps).sample(predictor, x0)
    assert torch.equal(ours, core)


@pytest.mark.parametrize("schedule", [(1, 5, 3), (0, 3, 2), (2, 0, 2), (0, 0, 3), (2, 2, 0)])
def test_matches_the_written_out_phases(schedule):
    model = FlowTurboModel(_predictor(), _refiner())
    x0 = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        ours = FlowTurboSampler(*schedule).sample(model, x0)
        reference = _reference(model, x0, *schedule)
    torch.testing.assert_close(ours, reference, rtol=0, atol=1e-6)


@pytest.mark.parametrize("schedule", [(1, 5, 3), (4, 0, 0), (0, 4, 0), (0, 0, 4), (2, 1, 2)])
def test_constant_velocity_is_exact_in_every_phase(schedule):
    model = FlowTurboModel(Constant(), _refiner(trained=False))
    x0 = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        x1 = FlowTurboSampler(*schedule).sample(model, x0)
    torch.testing.assert_close(x1, x0 + model.predictor.a, rtol=0, atol=1e-5)


@pytest.mark.parametrize("schedule", [(3, 0, 0), (0, 3, 0), (1, 5, 0)])
def test_velocity_linear_in_time_is_exact_for_heun_and_pseudo_corrector(schedule):
    # x(1) = x0 + a + b/2; the trapezoid rule is exact for a velocity linear in t.
    predictor = Constant(b=2.0)
    x0 = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        x1 = FlowTurboSampler(*schedule).sample(predictor, x0)
    torch.testing.assert_close(x1, x0 + predictor.a + 1.0, rtol=0, atol=1e-5)


def test_zero_refiner_phase_is_euler_with_the_previous_velocity():
    model = Counting(_predictor(), _refiner(trained=False))
    x0 = torch.randn(4, 1, 8, 8)
    sampler = FlowTurboSampler(1, 2, 3)
    with torch.no_grad():
        x1 = sampler.sample(model, x0)
    h = 1 / 6
    last_velocity = model.predictions[-1][2]
    states = [x for x, _, _, _ in model.refinements] + [x1]
    for k, (x, t, v_prev, _) in enumerate(model.refinements):
        assert torch.equal(v_prev, last_velocity)
        assert t[0].item() == pytest.approx((3 + k) / 6)
        torch.testing.assert_close(states[k + 1], x + h * last_velocity, rtol=0, atol=1e-6)


def test_refiner_needed_for_refiner_steps():
    with pytest.raises(FlowError, match="needs a FlowTurboModel"):
        FlowTurboSampler().sample(_predictor(), torch.randn(2, 1, 8, 8))
    with torch.no_grad():
        x1 = FlowTurboSampler(refiner_steps=0).sample(_predictor(), torch.randn(2, 1, 8, 8))
    assert x1.shape == (2, 1, 8, 8)


def test_guidance_wrapper_as_predictor():
    teacher = _predictor(num_classes=3)
    guided = ClassifierFreeGuidance(teacher, scale=2.5, null_cond=teacher.null_label)
    model = Counting(guided, _refiner(num_classes=3))
    x0 = torch.randn(4, 1, 8, 8)
    labels = torch.tensor([0, 1, 2, 1])
    with torch.no_grad():
        heun_only = FlowTurboSampler(2, 0, 0).sample(model, x0, labels)
        torch.testing.assert_close(heun_only, Heun(steps=2).sample(guided, x0, labels))
        model.refinements.clear()
        x1 = FlowTurboSampler(1, 2, 2).sample(model, x0, labels)
        assert len(model.refinements) == 2
        for _, _, _, cond in model.refinements:
            assert torch.equal(cond, labels)
        torch.testing.assert_close(x1, _reference(model, x0, 1, 2, 2, labels), rtol=0, atol=1e-6)
        unguided = FlowTurboSampler(1, 2, 2).sample(FlowTurboModel(teacher, model.refiner), x0)
    assert not torch.allclose(x1, unguided)
    with pytest.raises(FlowError, match=r"labels must lie in \[0, 3\]"):
        FlowTurboSampler(1, 2, 2).sample(model, x0, torch.tensor([0, 1, 2, 7]))


def test_refiner_grid_is_the_last_phase():
    sampler = FlowTurboSampler(1, 8, 3)
    assert sampler.time_grid.numel() == 13
    assert sampler.refiner_grid.tolist() == pytest.approx([9 / 12, 10 / 12, 11 / 12, 1.0])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"heun_steps": -1},
        {"pseudo_steps": 1.5},
        {"refiner_steps": True},
        {"heun_steps": 0, "pseudo_steps": 0, "refiner_steps": 0},
        {"compile_mode": "fast"},
    ],
)
def test_bad_counts_raise(kwargs):
    with pytest.raises(ConfigError, match="flowturbo"):
        FlowTurboSampler(**kwargs)
