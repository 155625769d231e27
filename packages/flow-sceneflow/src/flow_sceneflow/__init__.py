"""flow-sceneflow: LiDAR scene flow and optical flow for flow.

Scene flow: a seeded synthetic LiDAR generator on open3d ray casting
(:mod:`flow_sceneflow.data.synthetic`), loaders for real scan pairs (:mod:`flow_sceneflow.data.io`),
the learning-free ICP-Flow pipeline (:mod:`flow_sceneflow.icpflow`), the self-supervised SCOOP
method (:mod:`flow_sceneflow.scoop`) and the scene-flow metrics (:mod:`flow_sceneflow.metrics`).
Optical flow lives in :mod:`flow_sceneflow.optical`. The hook implementations are in
:mod:`flow_sceneflow.plugin`; components are imported only when first used.
"""
