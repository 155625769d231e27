"""Hook implementations of the physics plugin, and nothing else.

flow-physics is a library for now (spectra, Hellings-Downs, likelihood, evidence); the PTA
model-comparison task of issue 14 is planned. Until it exists the plugin registers no
component: the task hook is implemented and returns an empty list, so the plugin loads,
passes ``check_plugin`` and shows in ``flow plugins`` without advertising anything it cannot
run.
"""

from __future__ import annotations

import flow_core
from flow_core import Component

__all__ = ["FLOW_PLUGIN_API", "flow_register_tasks"]

FLOW_PLUGIN_API = 1


@flow_core.hookimpl
def flow_register_tasks() -> list[Component]:
    """The physics tasks (the PTA model-comparison task of issue 14 is planned)."""
    return [
        Component(
            "physics.turbulence",
            "flow_physics.tasks.turbulence:TurbulenceTask",
            "turbulence surrogates: IFactFormer-m/-o, FNO, IFNO rolled out on Kolmogorov flow",
        ),
    ]
