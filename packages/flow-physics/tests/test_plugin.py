from importlib.metadata import entry_points

import flow_physics.plugin
from flow_core.testing import check_plugin


def test_plugin_conforms():
    check_plugin(flow_physics.plugin)


def test_entry_point_is_declared():
    found = [ep for ep in entry_points(group="flow.plugins") if ep.name == "physics"]
    assert found and found[0].value == "flow_physics.plugin"
