"""Best-of-N: draw N samples and keep the one with the highest reward.

The simplest inference-time scaling baseline (the "random search" of Ma et al. 2025,
"Inference-Time Scaling for Diffusion Models beyond Scaling Denoising Steps"; the BoN baseline
of Kim et al. 2025). Each of the N source samples x0 is transported by the given sampler, usually
the deterministic ODE, and the reward is scored on the final samples x1 themselves. With a
sampler of N_s evaluations per sample it spends N·N_s NFE; size N from a budget with
:func:`flow_core.scaling.result.n_for_budget`. N = 1 is the single-sample baseline.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from flow_core.errors import FlowError
from flow_core.protocols import Sampler
from flow_core.scaling.result import ScalingResult, expand_cond
from flow_core.scaling.reward import Reward, evaluate_reward

__all__ = ["best_of_n"]


def best_of_n(
    model: nn.Module,
    reward: Reward,
    x0: Tensor,
    sampler: Sampler,
    cond: Tensor | None = None,
) -> ScalingResult:
    """Sample from every row of ``x0`` with ``sampler`` and return the best by ``reward``.

    Runs without gradients. ``nfe`` is ``N·sampler.nfe``, ``sampler.nfe`` being the
    per-sample count of the call.

    Args:
        model: the flow, of the kind ``sampler`` expects.
        reward: scores final samples (:class:`flow_core.scaling.reward.Reward`).
        x0: N source samples, shape (N, ...).
        sampler: any :class:`flow_core.protocols.Sampler`.
        cond: one condition of leading dimension 1 (expanded to N) or N conditions.

    Raises:
        FlowError: ``x0`` is empty, ``cond`` has a bad shape or the reward misbehaves.
    """
    n = x0.shape[0] if x0.ndim > 0 else 0
    if n < 1:
        raise FlowError(f"best_of_n: x0 must hold at least one sample, got shape {tuple(x0.shape)}")
    cond_n = expand_cond(cond, n)
    with torch.no_grad():
        x1 = sampler.sample(model, x0, cond_n)
        rewards = evaluate_reward(reward, x1, cond_n)
    best = int(rewards.argmax())
    return ScalingResult(
        sample=x1[best : best + 1],
        reward=float(rewards[best]),
        nfe=n * sampler.nfe,
        candidates=x1,
        candidate_rewards=rewards,
        diagnostics={"mean_reward": float(rewards.mean())},
    )
