"""Rewards for inference-time scaling: a score of a (predicted) data sample, higher is better.

Kim, Yoon, Hwang & Sung 2025, "Inference-Time Scaling for Flow Models via Stochastic Generation and
Rollover Budget Forcing" (arXiv 2503.19385), score intermediate states by the reward of their
Tweedie estimate of the data, which a velocity v at (x_t, t) gives with no further network call:

    x̂1 = (σ̇_t·x_t − σ_t·v)/(α_t·σ̇_t − α̇_t·σ_t),     linear path: x̂1 = x_t + (1 − t)·v.

A reward is any callable ``reward(x1_hat, cond=None) -> Tensor`` of shape (B,)
(:class:`Reward`). Two with a known optimum serve tests and benchmarks:
:class:`MixtureComponentReward` and :class:`DistanceReward`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from flow_core.datasets.mixture import GaussianMixture
from flow_core.errors import ConfigError, FlowError

__all__ = ["DistanceReward", "MixtureComponentReward", "Reward", "evaluate_reward"]


@runtime_checkable
class Reward(Protocol):
    """``reward(x1_hat, cond=None)``: one score per sample, shape (B,); higher is better."""

    def __call__(self, x1_hat: Tensor, cond: Tensor | None = None) -> Tensor: ...


def evaluate_reward(reward: Reward, x1_hat: Tensor, cond: Tensor | None = None) -> Tensor:
    """Call ``reward`` and check that it returned finite scores of shape (B,).

    Raises:
        FlowError: the scores have the wrong shape or are not finite.
    """
    scores = reward(x1_hat, cond)
    if scores.shape != (x1_hat.shape[0],):
        raise FlowError(
            f"a reward must return shape ({x1_hat.shape[0]},) for a batch of {x1_hat.shape[0]}, "
            f"got {tuple(scores.shape)}"
        )
    if not bool(torch.isfinite(scores).all()):
        raise FlowError("the reward returned non-finite scores")
    return scores


class MixtureComponentReward:
    """The log-posterior ``log P(k = component | x)`` of one component of a mixture.

    It is at most 0, and close to 0 exactly for points that lie in the chosen mode (and away from
    the others), so the optimum is known: every sample in that mode. Tilting the mixture by
    ``exp(reward)`` gives ``π_k·N(x; μ_k, s_k²I)``, the chosen component itself, which is what
    particle sampling with temperature 1 targets. Samples of shape (B, ...) are flattened to
    (B, D).

    Args:
        mixture: the mixture whose component is rewarded.
        component: the index of the rewarded component, in [0, K).
    """

    def __init__(self, mixture: GaussianMixture, component: int = 0) -> None:
        if not 0 <= component < mixture.n_components:
            raise ConfigError(
                f"MixtureComponentReward: component must lie in [0, {mixture.n_components}), "
                f"got {component}"
            )
        self.mixture = mixture
        self.component = component

    def __call__(self, x1_hat: Tensor, cond: Tensor | None = None) -> Tensor:
        flat = x1_hat.reshape(x1_hat.shape[0], -1)
        return self.mixture.log_posterior(flat)[:, self.component]


class DistanceReward:
    """The negative squared distance ``−‖x − target‖²`` to a fixed point (optimum 0 at it).

    Args:
        target: the point, with the shape of one sample; broadcast over the batch.
    """

    def __init__(self, target: Tensor) -> None:
        self.target = torch.as_tensor(target)

    def __call__(self, x1_hat: Tensor, cond: Tensor | None = None) -> Tensor:
        diff = x1_hat - self.target.to(x1_hat)
        return -diff.pow(2).reshape(x1_hat.shape[0], -1).sum(dim=1)
