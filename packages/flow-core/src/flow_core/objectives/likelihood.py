"""Maximum likelihood for invertible flows (normalizing flows).

Dinh et al. 2017 (Real NVP); Papamakarios et al. 2021, "Normalizing flows for probabilistic
modeling and inference". An invertible flow f maps data x to a latent z = f(x) with reference
density N(0, I), so by the change of variables

    log p_θ(x) = log N(f(x); 0, I) + log|det ∂f/∂x|,
    log N(z; 0, I) = −½‖z‖² − (d/2)·log 2π.

The loss is the negative log-likelihood per dimension, in nats, averaged over the batch:
L(θ) = −E_x[log p_θ(x)]/d. ``metrics`` reports it as ``"nll"`` (nats/dim) and
``"bits_per_dim"`` = nll/ln 2. The data need not be dequantised here; a task with discrete
data adds uniform noise to ``x1`` itself (and accounts for the bin width).
"""

from __future__ import annotations

import math
from typing import ClassVar

from torch import Tensor, nn

from flow_core.errors import FlowError
from flow_core.objectives.common import check_probability, drop_condition
from flow_core.protocols import Batch

__all__ = ["MaximumLikelihood", "gaussian_log_density"]


def gaussian_log_density(z: Tensor) -> Tensor:
    """log N(z; 0, I) per sample, shape ``(B,)``."""
    flat = z.reshape(z.shape[0], -1)
    return -0.5 * flat.square().sum(dim=1) - 0.5 * flat.shape[1] * math.log(2 * math.pi)


class MaximumLikelihood:
    """Negative log-likelihood per dimension of ``batch["x1"]`` under an invertible flow.

    The model is called as ``z, logdet = model(x1, cond)`` (its ``forward``), with ``logdet``
    of shape ``(B,)``. ``metrics`` holds ``"loss"``, ``"nll"`` and ``"bits_per_dim"``.

    Args:
        cond_dropout: probability of replacing a sample's condition by the null condition.
    """

    model_kind: ClassVar[str] = "invertible"
    name: ClassVar[str] = "nll"

    def __init__(self, cond_dropout: float = 0.0) -> None:
        self.cond_dropout = check_probability(cond_dropout, "cond_dropout", self.name)

    def __call__(self, model: nn.Module, batch: Batch) -> tuple[Tensor, dict[str, float]]:
        if "x1" not in batch:
            raise FlowError(f"nll: the batch needs key 'x1'; got keys {sorted(batch)}")
        x = batch["x1"]
        cond = drop_condition(model, batch.get("cond"), self.cond_dropout, self.name)
        z, logdet = model(x, cond)
        if logdet.shape != (x.shape[0],):
            raise FlowError(
                f"nll: the flow must return logdet of shape ({x.shape[0]},), got "
                f"{tuple(logdet.shape)}"
            )
        dim = x[0].numel()
        loss = -(gaussian_log_density(z) + logdet).mean() / dim
        nll = loss.item()
        return loss, {"loss": nll, "nll": nll, "bits_per_dim": nll / math.log(2)}
