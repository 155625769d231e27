"""FlowAR's training loss: flow matching at every scale, teacher-forced (Ren et al. 2024,
arXiv 2412.15205).

For clean images x with labels c, the pyramid x_1 … x_K, the conditions c_1 … c_K of the AR
transformer run on the clean lower scales, and per scale independent t_k ~ U(0, 1),
ε_k ~ N(0, I):

    L = (1/K) Σ_k mean ‖v_k((1 − t_k)·ε_k + t_k·x_k, t_k, c_k) − (x_k − ε_k)‖².

Labels are replaced by the null label with probability ``cond_dropout``.
"""

from __future__ import annotations

from typing import ClassVar, cast

import torch
from torch import Tensor, nn

from flow_core.errors import FlowError
from flow_core.gpu import unwrap
from flow_core.objectives import check_probability, drop_condition
from flow_core.protocols import Batch
from flow_images.flowar.model import FlowARModel, pyramid

__all__ = ["FlowARObjective"]


class FlowARObjective:
    """``loss, metrics = objective(model, {"x1": images, "cond": labels})``."""

    model_kind: ClassVar[str] = "flowar"

    def __init__(self, cond_dropout: float = 0.0) -> None:
        self.cond_dropout = check_probability(cond_dropout, "cond_dropout", "flowar")

    def __call__(self, model: nn.Module, batch: Batch) -> tuple[Tensor, dict[str, float]]:
        if "x1" not in batch:
            raise FlowError(f"flowar objective: the batch needs key 'x1'; got {sorted(batch)}")
        core = cast(FlowARModel, unwrap(model))
        scales = pyramid(batch["x1"], core.scales)
        label = batch.get("cond")
        if label is not None and self.cond_dropout:
            label = drop_condition(core, label, self.cond_dropout, "flowar")
        conditions = core.conditions(scales, label)
        losses = []
        for head, x1, condition in zip(core.heads, scales, conditions, strict=True):
            noise = torch.randn_like(x1)
            t = torch.rand(x1.shape[0], device=x1.device, dtype=x1.dtype)
            xt = (1 - t[:, None, None, None]) * noise + t[:, None, None, None] * x1
            losses.append((head(xt, t, condition) - (x1 - noise)).pow(2).mean())
        loss = torch.stack(losses).mean()
        metrics = {"loss": float(loss.detach())}
        metrics.update(
            {f"loss_scale{s}": float(v.detach()) for s, v in zip(core.scales, losses, strict=True)}
        )
        return loss, metrics
