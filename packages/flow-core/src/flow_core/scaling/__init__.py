"""Inference-time scaling for flows: spend more network evaluations to raise a reward.

Kim, Yoon, Hwang & Sung 2025, "Inference-Time Scaling for Flow Models via Stochastic
Generation and Rollover Budget Forcing" (arXiv 2503.19385), in the project
convention. A :class:`Reward` scores samples (and,
during a search, Tweedie estimates of the data); the searches compared at equal NFE are

- :func:`best_of_n`: N independent samples, keep the best (N = 1: a single sample);
- :func:`particle_sampling`: sequential Monte Carlo over the SDE with resampling;
- :func:`rollover_budget_forcing`: RBF, a greedy stepwise search over the SDE's children,
  by default on the variance-preserving path of the converted model.

Each returns a :class:`ScalingResult` with the total NFE it spent; :func:`n_for_budget` sizes
best-of-N and particle sampling from a budget.
"""

from flow_core.scaling.best_of_n import best_of_n
from flow_core.scaling.particles import particle_sampling
from flow_core.scaling.rbf import rollover_budget_forcing
from flow_core.scaling.result import ScalingResult, n_for_budget
from flow_core.scaling.reward import DistanceReward, MixtureComponentReward, Reward

__all__ = [
    "DistanceReward",
    "MixtureComponentReward",
    "Reward",
    "ScalingResult",
    "best_of_n",
    "n_for_budget",
    "particle_sampling",
    "rollover_budget_forcing",
]
