"""Conditional flow matching with the independent coupling (I-CFM).

Lipman et al. 2023, "Flow Matching for Generative Modeling"; Tong et al. 2023, "Improving and
Generalizing Flow-Based Generative Models with Minibatch Optimal Transport" (the σ-smoothed
path). In the project convention (t = 0 source, t = 1 data), with x0 ~ N(0, I) drawn
independently of the data x1, t ~ U(0, 1) per sample and ξ ~ N(0, I):

    x_t = (1 − t)·x0 + t·x1 + σ·ξ,
    L(θ) = E_{t, x0, x1, ξ} ‖v_θ(x_t, t, c) − (x1 − x0)‖².

The minimiser is the marginal velocity v(x, t) = E[x1 − x0 | x_t = x], whose flow carries the
source distribution to the data distribution. σ = 0 gives the rectified-flow loss
(Liu et al. 2022).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from flow_core.errors import ConfigError, FlowError
from flow_core.paths.linear import LinearPath
from flow_core.protocols import Batch

__all__ = ["ConditionalFlowMatching"]


class ConditionalFlowMatching:
    """The I-CFM objective: ``loss, metrics = objective(model, batch)``.

    ``batch`` holds ``"x1"`` (data, batch-first), optionally ``"x0"`` (a source sample of the
    same shape; standard normal noise is drawn when absent) and ``"cond"`` (passed to the model
    unchanged). The loss is the mean squared error over all elements; ``metrics`` is
    ``{"loss": float}``.

    Randomness comes from torch's global generators, drawn in this order: ``t``, then ``x0``
    (when absent), then ``ξ`` (when ``sigma > 0``); saving and restoring the RNG state therefore
    reproduces a step exactly.

    Args:
        sigma: standard deviation σ ≥ 0 of the Gaussian smoothing around the path.
    """

    def __init__(self, sigma: float = 0.0) -> None:
        if sigma < 0:
            raise ConfigError(f"cfm: sigma must be >= 0, got {sigma}")
        self.sigma = float(sigma)
        self.path = LinearPath()

    def __call__(self, model: nn.Module, batch: Batch) -> tuple[Tensor, dict[str, float]]:
        if "x1" not in batch:
            raise FlowError(f"cfm: the batch needs key 'x1'; got keys {sorted(batch)}")
        x1 = batch["x1"]
        t = torch.rand(x1.shape[0], device=x1.device, dtype=x1.dtype)
        x0 = batch.get("x0")
        if x0 is None:
            x0 = torch.randn_like(x1)
        elif x0.shape != x1.shape:
            raise FlowError(
                f"cfm: batch 'x0' has shape {tuple(x0.shape)}, 'x1' has {tuple(x1.shape)}; "
                "they must match"
            )
        x_t = self.path.interpolate(x0, x1, t)
        if self.sigma > 0:
            x_t = x_t + self.sigma * torch.randn_like(x_t)
        target = self.path.target_velocity(x0, x1, t)
        loss = (model(x_t, t, batch.get("cond")) - target).square().mean()
        return loss, {"loss": loss.item()}
