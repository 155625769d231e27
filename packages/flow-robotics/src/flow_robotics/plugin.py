"""Hook implementations of the robotics plugin, and nothing else.

flow imports this module through the entry point ``robotics`` (group ``flow.plugins``); the
targets below are imported only when a component is used.
"""

from __future__ import annotations

import flow_core
from flow_core import Component

FLOW_PLUGIN_API = 1


@flow_core.hookimpl
def flow_register_flows() -> list[Component]:
    return [
        Component(
            "policy-velocity",
            "flow_robotics.networks.policy:PolicyVelocity",
            "action-chunk velocity field v(x, t, obs) with an MLP observation encoder",
        ),
        Component(
            "policy-average",
            "flow_robotics.networks.policy:PolicyAverageVelocity",
            "action-chunk average-velocity field u(x, r, t, obs) (MeanFlow / DM1 policies)",
        ),
    ]


@flow_core.hookimpl
def flow_register_objectives() -> list[Component]:
    return [
        Component(
            "bc-mse",
            "flow_robotics.bc.objective:BehaviourCloning",
            "behaviour cloning by mean-squared error, as a one-step velocity field from zero",
        ),
    ]


@flow_core.hookimpl
def flow_register_tasks() -> list[Component]:
    return [
        Component(
            "robotics.metaworld",
            "flow_robotics.tasks.metaworld:MetaWorldTask",
            "one-step MeanFlow policies with dispersive regularisation (DM1) on Meta-World",
        ),
    ]
