"""Behaviour cloning (MSE) written as a degenerate flow, so it runs through every sampler slot.

Behaviour cloning regresses the action chunk on the observations, L = ‖π(o) − a‖² (Pomerleau
1989; the robomimic BC baseline, Mandlekar et al. 2021, arXiv 2108.03298). Here π(o) is a
velocity field evaluated at the source point x0 = 0 and t = 0, π(o) = v(0, 0, o): one Euler
step from x0 = 0 then gives exactly x1 = 0 + 1·v(0, 0, o) = π(o). The class attribute
``source_scale = 0`` tells a task to start its sampler from zeros instead of N(0, I) noise,
and sampling uses one step (NFE 1).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from flow_core.errors import FlowError
from flow_core.protocols import Batch

__all__ = ["BehaviourCloning"]


class BehaviourCloning:
    """MSE behaviour cloning of ``batch["x1"]`` given ``batch["cond"]`` (module docstring)."""

    model_kind: ClassVar[str] = "velocity"
    name: ClassVar[str] = "bc-mse"
    source_scale: ClassVar[float] = 0.0

    def __call__(self, model: nn.Module, batch: Batch) -> tuple[Tensor, dict[str, float]]:
        if "x1" not in batch:
            raise FlowError(f"{self.name}: the batch needs key 'x1'; got keys {sorted(batch)}")
        x1 = batch["x1"]
        zero = torch.zeros(x1.shape[0], dtype=x1.dtype, device=x1.device)
        prediction = model(torch.zeros_like(x1), zero, batch.get("cond"))
        loss = (prediction - x1).square().mean()
        return loss, {"loss": loss.item(), "mse": loss.item()}
