"""ARFlow's training loss on same-class sequences (Hui et al. 2025, arXiv 2501.16085).

A batch holds, per sample, L different training images x^(1..L) of one class c (``"x1"``,
``(B, L, C, S, S)``; ``"cond"``, ``(B,)``). Image i gets its own noise ε_i and a time from the
i-th of L equal strata, t_i = (i − 1 + u_i)/L with u_i ~ U(0, 1), so that the noisier images
come first — the causal predecessors:

    x_{t_i}^(i) = (1 − t_i)·ε_i + t_i·x^(i),
    L = mean_i ‖v_i(x_{t_1}^(1), …, x_{t_i}^(i); c) − (x^(i) − ε_i)‖².

Labels are replaced by the null label with probability ``cond_dropout``.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from flow_core.errors import FlowError
from flow_core.objectives import check_probability, drop_condition
from flow_core.protocols import Batch

__all__ = ["ARFlowObjective", "sequence_times"]


def sequence_times(batch: int, length: int, device: torch.device | None = None) -> Tensor:
    """Stratified increasing times ``(batch, length)``: t_i ∈ [(i − 1)/L, i/L)."""
    offsets = torch.rand(batch, length, device=device)
    return (torch.arange(length, device=device) + offsets) / length


class ARFlowObjective:
    """``loss, metrics = objective(model, {"x1": sequences, "cond": labels})``."""

    model_kind: ClassVar[str] = "arflow"

    def __init__(self, cond_dropout: float = 0.0) -> None:
        self.cond_dropout = check_probability(cond_dropout, "cond_dropout", "arflow")

    def __call__(self, model: nn.Module, batch: Batch) -> tuple[Tensor, dict[str, float]]:
        x1 = batch.get("x1")
        if x1 is None or x1.ndim != 5:
            shape = None if x1 is None else tuple(x1.shape)
            raise FlowError(f"arflow objective: 'x1' must be (B, L, C, S, S), got {shape}")
        cond = drop_condition(model, batch.get("cond"), self.cond_dropout, "arflow")
        noise = torch.randn_like(x1)
        t = sequence_times(x1.shape[0], x1.shape[1], x1.device).to(x1.dtype)
        weight = t[..., None, None, None]
        xt = (1 - weight) * noise + weight * x1
        loss = (model(xt, t, cond) - (x1 - noise)).pow(2).mean()
        return loss, {"loss": float(loss.detach())}
