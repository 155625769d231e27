"""The plugin: conformance, registered names, and the error when flow-norms is missing."""

from importlib.metadata import entry_points

import pytest
import torch

import flow_norms.plugin
from flow_core.errors import UnknownComponentError
from flow_core.options import construct
from flow_core.testing import check_plugin, isolated_registry


def test_plugin_conforms():
    check_plugin(flow_norms.plugin)


def test_components_are_registered_under_the_core_names():
    registry = isolated_registry(flow_norms.plugin)
    assert registry.names("norm") == ["batch", "layer", "power", "rms"]
    assert registry.names("optimizer") == ["adam", "adamp", "adamw", "sgd", "sgdp"]  # + core's
    assert "norms.lm" in registry.names("task")


def test_entry_point_is_declared():
    found = [ep for ep in entry_points(group="flow.plugins") if ep.name == "norms"]
    if not found:
        pytest.skip("flow-norms is not installed")
    assert found[0].value == "flow_norms.plugin"


@pytest.mark.parametrize("name", ["power", "layer", "rms", "batch"])
def test_every_norm_follows_the_calling_convention(name):
    """Norm(num_features, **options) ignores options it does not take; forward(x, mask)."""
    cls = isolated_registry(flow_norms.plugin).load("norm", name)
    options = {"num_features": 8, "warmup_iters": 3, "group_scaling": True, "eps": 1e-5}
    norm = construct(cls, options, {})
    x = torch.randn(2, 5, 8)
    mask = torch.zeros(2, 5, dtype=torch.bool)
    mask[1, 3:] = True
    assert norm(x, mask).shape == x.shape
    assert norm(x).shape == x.shape


def test_missing_package_is_named_in_the_error():
    registry = isolated_registry()  # core only: flow-norms absent
    with pytest.raises(UnknownComponentError, match="pip install flow-norms"):
        registry.load("norm", "power")
    with pytest.raises(UnknownComponentError, match="flow-norms"):
        registry.load("optimizer", "adamp")
