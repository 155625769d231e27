"""What every inference-time-scaling method returns, and the helpers they share.

Function evaluations (NFE) are counted per sample, as in Kim et al. 2025: a network call on a
batch of B states costs B. One ODE or SDE sample on a grid of N steps therefore costs N, and a
method given a budget of NFE can be compared with best-of-(budget // N) at equal cost
(:func:`n_for_budget`). Rewards are not counted: the rewards of intermediate states are scored
on their Tweedie estimates, which reuse the velocity computed for the step.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from flow_core.errors import ConfigError, FlowError

__all__ = ["ScalingResult", "expand_cond", "n_for_budget", "placement"]


@dataclass
class ScalingResult:
    """The outcome of an inference-time search.

    Attributes:
        sample: the chosen sample, shape (1, ...).
        reward: its reward.
        nfe: the network evaluations spent in total, per sample (module docstring).
        candidates: the final samples the choice was made from, shape (M, ...).
        candidate_rewards: their rewards, shape (M,).
        trace: for a stepwise search, the highest reward among the states it holds at each
            step, scored on their Tweedie estimates; empty for best-of-N.
        diagnostics: further numbers, named by each method.
    """

    sample: Tensor
    reward: float
    nfe: int
    candidates: Tensor
    candidate_rewards: Tensor
    trace: list[float] = field(default_factory=list)
    diagnostics: dict[str, float] = field(default_factory=dict)


def n_for_budget(budget: int, steps: int) -> int:
    """How many trajectories of ``steps`` evaluations fit in ``budget``: ``budget // steps``.

    Raises:
        ConfigError: ``steps < 1`` or the budget does not cover one trajectory.
    """
    if steps < 1 or budget < steps:
        raise ConfigError(
            f"a budget of {budget} NFE does not cover one trajectory of {steps} steps; "
            f"need steps >= 1 and budget >= steps"
        )
    return budget // steps


def expand_cond(cond: Tensor | None, n: int) -> Tensor | None:
    """``cond`` for a batch of ``n``: a leading dimension of 1 is expanded, one of ``n`` kept.

    Raises:
        FlowError: ``cond``'s leading dimension is neither 1 nor ``n``.
    """
    if cond is None or (cond.ndim > 0 and cond.shape[0] == n):
        return cond
    if cond.ndim == 0 or cond.shape[0] != 1:
        raise FlowError(
            f"the condition must have a leading dimension of 1 (one condition for the whole "
            f"search) or {n}, got shape {tuple(cond.shape)}"
        )
    return cond.expand(n, *cond.shape[1:])


def placement(
    model: nn.Module, device: torch.device | str | None, dtype: torch.dtype | None
) -> tuple[torch.device, torch.dtype]:
    """The device and dtype to draw source samples on: the arguments, else the model's.

    The model's are those of its first floating-point parameter or buffer; CPU and float32
    when it has none.
    """
    tensors = itertools.chain(model.parameters(), model.buffers())
    tensor = next((p for p in tensors if p.is_floating_point()), None)
    default_device = torch.device("cpu") if tensor is None else tensor.device
    default_dtype = torch.float32 if tensor is None else tensor.dtype
    return (
        default_device if device is None else torch.device(device),
        default_dtype if dtype is None else dtype,
    )
