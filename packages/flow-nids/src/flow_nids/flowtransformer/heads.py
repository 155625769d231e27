"""FlowTransformer's classification heads: (B, T, width) transformer outputs to one vector.

Manocchio et al. 2023 (arXiv:2304.14746), "classification head"; their finding is that the
head matters most, and that global average pooling performs very poorly:

- ``last-token``: ``h_T``, the output at the window's last flow (the flow being classified);
- ``cls``: ``h_0`` of a learnable token prepended to the window before the sequence model;
- ``gap``: ``(1/T) Σ_t h_t``;
- ``flatten``: ``[h_1, ..., h_T]``;
- ``featurewise``: ``[W h_1 + b, ..., W h_T + b]`` with a small ``W`` (16 outputs), then
  flattened; ``featurewise-projection``: the same without the bias.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["HEADS", "Head"]

HEADS = ("last-token", "cls", "gap", "flatten", "featurewise", "featurewise-projection")


class Head(nn.Module):
    """Reduce (B, T, width) to (B, out_features); ``cls`` reads token 0 (the prepended one)."""

    def __init__(self, kind: str, width: int, tokens: int, featurewise_dim: int = 16) -> None:
        super().__init__()
        if kind not in HEADS:
            raise ValueError(f"unknown head {kind!r}; choose one of {', '.join(HEADS)}")
        self.kind = kind
        self.featurewise: nn.Linear | None = None
        if kind.startswith("featurewise"):
            self.featurewise = nn.Linear(width, featurewise_dim, bias=kind == "featurewise")
            self.out_features = tokens * featurewise_dim
        elif kind == "flatten":
            self.out_features = tokens * width
        else:
            self.out_features = width

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if self.kind == "last-token":
            return h[:, -1]
        if self.kind == "cls":
            return h[:, 0]
        if self.kind == "gap":
            return h.mean(dim=1)
        if self.featurewise is not None:
            h = self.featurewise(h)
        return h.flatten(1)
