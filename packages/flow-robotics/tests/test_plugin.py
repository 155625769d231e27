"""Conformance of the robotics plugin and its registered components."""

from importlib.metadata import entry_points

import pytest

import flow_robotics.plugin
from flow_core.testing import check_plugin


def test_plugin_conforms():
    check_plugin(flow_robotics.plugin)


def test_components_are_registered(flow_registry):
    registry = flow_registry(flow_robotics.plugin)
    assert "robotics.metaworld" in registry.names("task")
    assert {"policy-velocity", "policy-average"} <= set(registry.names("flow"))
    assert "bc-mse" in registry.names("objective")


def test_entry_point_is_declared():
    found = [ep for ep in entry_points(group="flow.plugins") if ep.name == "robotics"]
    if not found:
        pytest.skip("flow-robotics is not installed; run: pip install -e '.[test]'")
    assert found[0].value == "flow_robotics.plugin"
