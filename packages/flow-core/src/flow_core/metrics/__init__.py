"""Sample-based metrics for generative flows.

See :mod:`flow_core.metrics.distances` for sliced Wasserstein and RBF-kernel MMD.
"""

from flow_core.metrics.distances import mmd_rbf, sliced_wasserstein

__all__ = ["mmd_rbf", "sliced_wasserstein"]
