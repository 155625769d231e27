"""Weighted conditional flow matching (W-CFM).

Calvo-Ordoñez, Meunier et al. 2025, "Weighted Conditional Flow Matching". The CFM loss on
*independent* pairs, each weighted by a Gibbs kernel of its transport cost:

    L(θ) = E_{t, x0 ~ μ, x1 ~ ν} w(x0, x1)·‖v_θ(x_t, t, c) − (x1 − x0)‖²,
    w(x0, x1) = exp(−c(x0, x1)/ε),  c(x0, x1) = ‖x1 − x0‖²,

with x_t = (1 − t)·x0 + t·x1 (project convention; no time enters the weight, so nothing
changes between conventions). This trains on the coupling π_ε ∝ e^{−c/ε}·μ⊗ν, the entropic OT
plan without its Schrödinger potentials: it straightens paths like OT-CFM at the O(B) cost of
I-CFM, but tilts the marginals, ν̃(x1) ∝ ν(x1)·∫e^{−c(x0, x1)/ε}dμ(x0) (and likewise μ̃),
increasingly so as ε shrinks. As B → ∞ it coincides with minibatch OT-CFM.

Temperature. ε is set relative to the cost scale of the batch (the default):

    ε = λ_rel · c̄,  c̄ = (1/B²)·Σ_{i,j} ‖x1_j − x0_i‖²   (the mean over all B² pairs of μ⊗ν),

a reparametrisation of the paper's fixed ε by the batch's cost scale (our choice; the paper's
kernel is exp(−c/ε) with ε a hyperparameter, and its text was not at hand to check further),

so the kernel exp(−c/(λ_rel·c̄)) is unchanged when the data are rescaled and keeps the same
strength as the dimension d grows (c̄ grows like d). A fixed absolute ε (``lam``) is
available too, but costs grow with d: with ε = 1 on 16-D or 64-D data exp(−c/ε) is nearly
one-hot over the batch (effective sample size ≈ 1/B), so every step fits the few cheapest
pairs, the learned field is that of a strongly tilted pair of marginals, and sampling it from
the true source μ = N(0, I) goes to the wrong distribution, the more faithfully the finer the
solver. c̄ is computed in O(B·d) from the batch means, ‖x0‖² + ‖x1‖² − 2⟨x0, x1⟩ averaged
over i, j, and carries no gradient.

Normalisation: the weights are divided by their batch mean (computed as B·softmax(−c/ε), which
cannot underflow), so the loss keeps the scale of the unweighted loss for any ε. This is the
self-normalised estimate of the π_ε-expectation. The metric ``"ess"`` is the weights'
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

__all__ = [
    "DEFAULT_LAM_REL",
    "WeightedConditionalFlowMatching",
    "gibbs_weights",
    "mean_pairwise_cost",
]

DEFAULT_LAM_REL = 0.3
"""Default λ_rel: ε = 0.3·c̄ (chosen on the core bench's gmm-16d; see docs/benchmarks/core.md)."""


def mean_pairwise_cost(x0: Tensor, x1: Tensor) -> Tensor:
    """c̄ = mean over all B² pairs (i, j) of ‖x1_j − x0_i‖², in O(B·d), without gradient."""
    a = x0.detach().reshape(x0.shape[0], -1)
    b = x1.detach().reshape(x1.shape[0], -1)
    cross = (a.mean(dim=0) * b.mean(dim=0)).sum()
    return a.square().sum(dim=1).mean() + b.square().sum(dim=1).mean() - 2 * cross


def gibbs_weights(
    x0: Tensor, x1: Tensor, lam: float | None = None, lam_rel: float | None = None
) -> Tensor:
    """Weights ∝ exp(−‖x1_i − x0_i‖²/ε) of the pairs, normalised to mean 1, shape ``(B,)``.

    Exactly one of ``lam`` (ε itself) and ``lam_rel`` (ε = λ_rel·c̄, c̄ from
    :func:`mean_pairwise_cost`) is given.
    """
    cost = (x1 - x0).detach().reshape(x0.shape[0], -1).square().sum(dim=1)
    if lam is not None and lam_rel is None:
        eps: float | Tensor = lam
    elif lam_rel is not None and lam is None:
        eps = lam_rel * mean_pairwise_cost(x0, x1).clamp_min(1e-12)
    else:
        raise ValueError("gibbs_weights: give exactly one of lam and lam_rel")
    return torch.softmax(-cost / eps, dim=0) * x0.shape[0]


class WeightedConditionalFlowMatching(ConditionalFlowMatching):
    """W-CFM: ``loss, metrics = objective(model, batch)``; see the module docstring.

    The batch is read as by :class:`~flow_core.objectives.cfm.ConditionalFlowMatching`
    (``"x1"``, optional ``"x0"`` and ``"cond"``). ``metrics`` holds ``"loss"`` and ``"ess"``.

    Args:
        lam_rel: the kernel temperature relative to the batch's mean pairwise cost,
            ε = λ_rel·c̄ > 0 (scale-free; :data:`DEFAULT_LAM_REL` when neither it nor ``lam``
            is set). Smaller values approach OT pairings and tilt the marginals more.
        lam: an absolute temperature ε > 0 in units of squared distance, instead of
            ``lam_rel``; setting both is an error.
        sigma, time_density, loss, path, cond_dropout: as for
            :class:`~flow_core.objectives.cfm.ConditionalFlowMatching`.
    """

    name: ClassVar[str] = "w-cfm"

    def __init__(
        self,
        lam_rel: float | None = None,
        lam: float | None = None,
        sigma: float = 0.0,
        time_density: str = "uniform",
        loss: str = "squared",
        path: str = "linear",
        cond_dropout: float = 0.0,
    ) -> None:
        if lam is not None and lam_rel is not None:
            raise ConfigError("w-cfm: set lam (absolute) or lam_rel (relative), not both")
        if lam is None and lam_rel is None:
            lam_rel = DEFAULT_LAM_REL
        for option, value in (("lam", lam), ("lam_rel", lam_rel)):
            if value is not None and not value > 0:
                raise ConfigError(f"w-cfm: {option} must be > 0, got {value}")
        super().__init__(
            sigma=sigma, time_density=time_density, loss=loss, path=path, cond_dropout=cond_dropout
        )
        self.lam = None if lam is None else float(lam)
        self.lam_rel = None if lam_rel is None else float(lam_rel)

    def __call__(self, model: nn.Module, batch: Batch) -> tuple[Tensor, dict[str, float]]:
        x0, x1 = source_and_data(batch, self.name)
        t = self.time_density(x1.shape[0], device=x1.device, dtype=x1.dtype)
        weights = gibbs_weights(x0, x1, lam=self.lam, lam_rel=self.lam_rel)
        per_sample = self.regression_loss(model, x0, x1, t, batch.get("cond"))
        loss = (weights * per_sample).mean()
        ess = 1.0 / weights.square().mean().item()
        return loss, {"loss": loss.item(), "ess": ess}
