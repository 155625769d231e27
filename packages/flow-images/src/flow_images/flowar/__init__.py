"""FlowAR: scale-wise autoregressive generation with flow matching (Ren et al. 2024,
arXiv 2412.15205). :mod:`~flow_images.flowar.model` is the network, the pyramid and the
sampler, :mod:`~flow_images.flowar.objective` the per-scale flow-matching loss."""

from flow_images.flowar.model import FlowARModel, pyramid
from flow_images.flowar.objective import FlowARObjective

__all__ = ["FlowARModel", "FlowARObjective", "pyramid"]
