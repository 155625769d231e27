"""ARFlow: autoregressive flow with hybrid linear attention (Hui et al. 2025, arXiv 2501.16085).

:mod:`~flow_images.arflow.attention` holds the hybrid attention (full within an image,
chunk-wise causal linear attention across images), :mod:`~flow_images.arflow.model` the
causal transformer and its sampler, :mod:`~flow_images.arflow.objective` the training loss on
same-class sequences.
"""

from flow_images.arflow.attention import (
    HybridAttention,
    chunked_linear_attention,
    naive_linear_attention,
)
from flow_images.arflow.model import ARFlowModel
from flow_images.arflow.objective import ARFlowObjective, sequence_times

__all__ = [
    "ARFlowModel",
    "ARFlowObjective",
    "HybridAttention",
    "chunked_linear_attention",
    "naive_linear_attention",
    "sequence_times",
]
