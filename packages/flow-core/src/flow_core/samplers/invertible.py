"""Sampling an invertible flow: push source noise through its inverse, ``x1 = f⁻¹(z)``.

A normalizing flow (RealNVP, Dinh et al. 2017; TARFlow, Zhai et al. 2024) maps data to
latents, ``z, log|det ∂z/∂x| = f(x)``; drawing ``z ~ N(0, I)`` and inverting samples the model
in one network evaluation (autoregressive flows count one evaluation per inverse pass).
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn

from flow_core.errors import FlowError

__all__ = ["InverseSampler"]


class InverseSampler:
    """``sample(model, z) = model.inverse(z, cond)``; ``nfe`` is 1 (one inverse pass)."""

    model_kind: ClassVar[str] = "invertible"

    def __init__(self) -> None:
        self.nfe = 0

    def sample(self, model: nn.Module, x0: Tensor, cond: Tensor | None = None) -> Tensor:
        inverse = getattr(model, "inverse", None)
        if inverse is None:
            raise FlowError(f"{type(model).__name__} has no inverse(z, cond): it is not invertible")
        self.nfe = 1
        out: Tensor = inverse(x0, cond)
        return out
