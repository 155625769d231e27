"""GS-Jacobi decoding of TARFlow-family flows (Liu & Qin 2025, arXiv 2505.12849)."""

from flow_images.gsjacobi.metrics import convergence_ranking_metric, initial_guess
from flow_images.gsjacobi.sampler import GSJacobiSampler

__all__ = ["GSJacobiSampler", "convergence_ranking_metric", "initial_guess"]
