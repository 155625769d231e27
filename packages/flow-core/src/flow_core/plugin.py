"""The built-in plugin: flow-core's own components, registered through the ordinary hooks."""

from __future__ import annotations

from flow_core.components import Component
from flow_core.hookspecs import hookimpl

FLOW_PLUGIN_API = 1


@hookimpl
def flow_register_flows() -> list[Component]:
    return [
        Component(
            "mlp",
            "flow_core.models.mlp:MLPVelocity",
            "MLP velocity field v(x, t, cond) for low-dimensional data",
        ),
    ]


@hookimpl
def flow_register_objectives() -> list[Component]:
    return [
        Component(
            "cfm",
            "flow_core.objectives.cfm:ConditionalFlowMatching",
            "conditional flow matching on the linear path, independent coupling (Lipman 2023)",
        ),
    ]


@hookimpl
def flow_register_samplers() -> list[Component]:
    return [
        Component("euler", "flow_core.samplers.fixed_step:Euler", "explicit Euler ODE steps"),
        Component(
            "dopri5",
            "flow_core.samplers.adaptive:Dopri5",
            "adaptive Dormand-Prince 5(4) through torchdiffeq (rtol, atol)",
        ),
    ]


@hookimpl
def flow_register_tasks() -> list[Component]:
    return [
        Component(
            "core.toy2d",
            "flow_core.tasks.toy2d:Toy2D",
            "train a velocity field on a 2-D target (8 gaussians, moons, checkerboard, ...)",
        ),
    ]
