"""Probability paths between the source (t = 0) and the data (t = 1).

See :mod:`flow_core.paths.linear` for the linear path x_t = (1 − t)·x0 + t·x1.
"""

from flow_core.paths.linear import LinearPath, expand_time

__all__ = ["LinearPath", "expand_time"]
