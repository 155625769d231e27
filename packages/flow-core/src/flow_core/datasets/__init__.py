"""Datasets generated locally for the core's tasks, tests and benchmarks.

:mod:`flow_core.datasets.toy2d` has the 2-D toy targets; :mod:`flow_core.datasets.mixture`
Gaussian mixtures of any dimension with their exact density and the exact velocity field of the
linear path from N(0, I) to them.
"""

from flow_core.datasets.mixture import GaussianMixture, MixtureVelocity
from flow_core.datasets.toy2d import TOY2D_TARGETS, sample_toy2d

__all__ = ["TOY2D_TARGETS", "GaussianMixture", "MixtureVelocity", "sample_toy2d"]
