"""Hook implementations of the sceneflow plugin, and nothing else."""

from __future__ import annotations

import flow_core
from flow_core import Component

FLOW_PLUGIN_API = 1


@flow_core.hookimpl
def flow_register_tasks() -> list[Component]:
    return [
        Component(
            "sceneflow.icpflow",
            "flow_sceneflow.tasks.icpflow:IcpFlowTask",
            "learning-free LiDAR scene flow with ICP-Flow (clusters, histogram init, batched ICP)",
        ),
        Component(
            "sceneflow.scoop",
            "flow_sceneflow.tasks.scoop:ScoopTask",
            "self-supervised LiDAR scene flow with SCOOP (OT matching + test-time refinement)",
        ),
        Component(
            "sceneflow.optical",
            "flow_sceneflow.tasks.optical:OpticalFlowTask",
            "training-free optical flow (ReynoldsFlow-style) with EPE on known-flow image pairs",
        ),
    ]
