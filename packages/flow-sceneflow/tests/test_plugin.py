from importlib.metadata import entry_points

import flow_sceneflow.plugin
from flow_core.testing import check_plugin


def test_plugin_conforms():
    check_plugin(flow_sceneflow.plugin)


def test_tasks_are_registered(flow_registry):
    registry = flow_registry(flow_sceneflow.plugin)
    names = registry.names("task")
    for name in ("sceneflow.icpflow", "sceneflow.scoop", "sceneflow.optical"):
        assert name in names


def test_entry_point_is_declared():
    found = [ep for ep in entry_points(group="flow.plugins") if ep.name == "sceneflow"]
    assert found and found[0].value == "flow_sceneflow.plugin"
