"""Weighted conditional flow matching (W-CFM).

Calvo-Ordoñez, Meunier et al. 2025, "Weighted Conditional Flow Matching". The CFM loss on
*independent* pairs, each weighted by a Gibbs kernel of its transport cost:

    L(θ) = E_{t, x0 ~ μ, x1 ~ ν} w(x0, x1)·‖v_θ(x_t, t, c) − (x1 − x0)‖²,
    w(x0, x1) = exp(−‖x1 − x0‖²/λ),

with x_t = (1 − t)·x0 + t·x1 (project convention; no time enters the weight, so nothing
changes between conventions). This trains on the coupling π_λ ∝ e^{−c/λ}·μ⊗ν, the entropic OT
plan without its Schrödinger potentials: it straightens paths like OT-CFM at the O(B) cost of
I-CFM, but tilts the marginals, ν̃(x1) ∝ ν(x1)·∫e^{−c(x0, x1)/λ}dμ(x0) (and likewise μ̃),
increasingly so as λ shrinks. As B → ∞ it coincides with minibatch OT-CFM.

Normalisation: the weights are divided by their batch mean (computed as B·softmax(−c/λ), which
cannot underflow), so the loss keeps the scale of the unweighted loss for any λ. This is the
self-normalised estimate of the π_λ-expectation. The metric ``"ess"`` is the weights'
effective sample size as a fraction of the batch, (Σw)²/(B·Σw²) ∈ (0, 1]: near 1 the loss is
close to I-CFM, near 1/B a single pair dominates the step.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from flow_core.errors import ConfigError
from flow_core.objectives.cfm import ConditionalFlowMatching
from flow_core.objectives.common import source_and_data
from flow_core.protocols import Batch

__all__ = ["WeightedConditionalFlowMatching", "gibbs_weights"]


def gibbs_weights(x0: Tensor, x1: Tensor, lam: float) -> Tensor:
    """Weights ∝ exp(−‖x1_i − x0_i‖²/λ) of the pairs, normalised to mean 1, shape ``(B,)``."""
    cost = (x1 - x0).detach().reshape(x0.shape[0], -1).square().sum(dim=1)
    return torch.softmax(-cost / lam, dim=0) * x0.shape[0]


class WeightedConditionalFlowMatching(ConditionalFlowMatching):
    """W-CFM: ``loss, metrics = objective(model, batch)``; see the module docstring.

    The batch is read as by :class:`~flow_core.objectives.cfm.ConditionalFlowMatching`
    (``"x1"``, optional ``"x0"`` and ``"cond"``). ``metrics`` holds ``"loss"`` and ``"ess"``.

    Args:
        lam: the kernel temperature λ > 0, in units of squared distance; smaller values
            approach OT pairings and tilt the marginals more.
        sigma, time_density, loss, path, cond_dropout: as for
            :class:`~flow_core.objectives.cfm.ConditionalFlowMatching`.
    """

    name: ClassVar[str] = "w-cfm"

    def __init__(
        self,
        lam: float = 1.0,
        sigma: float = 0.0,
        time_density: str = "uniform",
        loss: str = "squared",
        path: str = "linear",
        cond_dropout: float = 0.0,
    ) -> None:
        if not lam > 0:
            raise ConfigError(f"w-cfm: lam must be > 0, got {lam}")
        super().__init__(
            sigma=sigma, time_density=time_density, loss=loss, path=path, cond_dropout=cond_dropout
        )
        self.lam = float(lam)

    def __call__(self, model: nn.Module, batch: Batch) -> tuple[Tensor, dict[str, float]]:
        x0, x1 = source_and_data(batch, self.name)
        t = self.time_density(x1.shape[0], device=x1.device, dtype=x1.dtype)
        weights = gibbs_weights(x0, x1, self.lam)
        per_sample = self.regression_loss(model, x0, x1, t, batch.get("cond"))
        loss = (weights * per_sample).mean()
        ess = 1.0 / weights.square().mean().item()
        return loss, {"loss": loss.item(), "ess": ess}
