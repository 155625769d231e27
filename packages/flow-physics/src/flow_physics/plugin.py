"""Hook implementations of the physics plugin, and nothing else."""

from __future__ import annotations

import flow_core
from flow_core import Component

__all__ = ["FLOW_PLUGIN_API", "flow_register_flows", "flow_register_tasks"]

FLOW_PLUGIN_API = 1


@flow_core.hookimpl
def flow_register_flows() -> list[Component]:
    return [
        Component(
            "physics-nsf",
            "flow_physics.networks.spline:SplineFlow",
            "neural-spline normalizing flow (zuko NSF, coupling) for posterior inference",
        ),
    ]


@flow_core.hookimpl
def flow_register_tasks() -> list[Component]:
    return [
        Component(
            "physics.pta",
            "flow_physics.tasks.pta:PTATask",
            "PTA background model comparison: a flow per model, evidences, Bayes factors",
        ),
        Component(
            "physics.turbulence",
            "flow_physics.tasks.turbulence:TurbulenceTask",
            "turbulence surrogates: IFactFormer-m/-o, FNO, IFNO rolled out on Kolmogorov flow",
        ),
    ]
