"""Datasets generated locally for the core's tasks and tests.

See :mod:`flow_core.datasets.toy2d` for the 2-D toy targets.
"""

from flow_core.datasets.toy2d import TOY2D_TARGETS, sample_toy2d

__all__ = ["TOY2D_TARGETS", "sample_toy2d"]
