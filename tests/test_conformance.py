"""Every registered component of every installed plugin, built and checked against its
protocol (in one parametrised test, the way zuko tests every flow)."""

import dataclasses

import pytest
import torch

from flow_core.config import resolve_settings
from flow_core.protocols import (
    MODEL_KINDS,
    AverageVelocityField,
    InvertibleFlow,
    Objective,
    Sampler,
    TeacherObjective,
    VelocityField,
)
from flow_core.registry import get_registry, using_registry
from flow_core.routing import plan_run

FLOWS = {
    "velocity": VelocityField,
    "average-velocity": AverageVelocityField,
    "invertible": InvertibleFlow,
}


def _entries(kind):
    return [pytest.param(entry, id=entry.name) for entry in get_registry().entries(kind)]


@pytest.mark.parametrize("entry", _entries("flow"))
def test_flows_follow_their_protocol(entry):
    cls = entry.load()
    assert cls.model_kind in MODEL_KINDS
    torch.manual_seed(0)
    with using_registry(get_registry()):
        flow = cls()
    assert isinstance(flow, FLOWS[cls.model_kind])
    assert isinstance(flow, torch.nn.Module)
    if getattr(flow, "num_classes", 0):
        assert flow.null_label == flow.num_classes


@pytest.mark.parametrize("entry", _entries("objective"))
def test_objectives_follow_their_protocol(entry):
    objective = entry.load()()
    assert isinstance(objective, Objective)
    assert objective.model_kind in MODEL_KINDS
    if hasattr(objective, "prepare"):
        assert isinstance(objective, TeacherObjective)


@pytest.mark.parametrize("entry", _entries("sampler"))
def test_samplers_follow_their_protocol(entry):
    sampler = entry.load()()
    assert isinstance(sampler, Sampler)
    assert sampler.model_kind in MODEL_KINDS
    assert isinstance(sampler.nfe, int)


@pytest.mark.parametrize("entry", _entries("norm"))
def test_norms_keep_the_shape(entry):
    norm = entry.load()(num_features=8)
    x = torch.randn(3, 5, 8)
    assert norm(x).shape == x.shape


@pytest.mark.parametrize("entry", _entries("optimizer"))
def test_optimizers_step(entry):
    weight = torch.nn.Parameter(torch.ones(4, 4))
    optimizer = entry.load()([weight], lr=0.1)
    (weight**2).sum().backward()
    optimizer.step()
    assert isinstance(optimizer, torch.optim.Optimizer)
    assert not torch.equal(weight.detach(), torch.ones(4, 4))


@pytest.mark.parametrize("entry", _entries("task"))
def test_task_defaults_pass_the_run_checks(entry):
    task_cls = entry.load()
    config_cls = task_cls.Config
    assert dataclasses.is_dataclass(config_cls) and config_cls.__dataclass_params__.frozen
    registry = get_registry()
    with using_registry(registry):
        plan = plan_run(task_cls(), resolve_settings(config_cls), registry)
    for kind, name in plan.components.values():
        registry.get(kind, name)
