"""FlowTransformer's input encodings: one flow record to one token vector.

Manocchio et al. 2023 (arXiv:2304.14746), "input encoding". A record is its ``F`` numeric
features ``n`` (scaled to [0, 1]) and its ``C`` categorical codes ``c_j`` in ``0..V-1``:

- ``none`` (NoInputEncoder): ``[n, onehot(c_1), ..., onehot(c_C)]``, width ``F + C·V``;
- ``record`` (RecordLevelEmbed): ``W [n, onehot(c)] + b``, width ``d`` (64); ``record-projection``
  is the same without the bias;
- ``categorical-dense`` (CategoricalFeatureEmbed, dense): ``[n, W_1 onehot(c_1) + b_1, ...]``,
  16 dimensions per categorical field; ``categorical-lookup``: the same with an embedding
  table per field (integer input); ``categorical-projection``: dense without bias.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

__all__ = ["ENCODINGS", "InputEncoding"]

ENCODINGS = (
    "none",
    "record",
    "record-projection",
    "categorical-dense",
    "categorical-lookup",
    "categorical-projection",
)


class InputEncoding(nn.Module):
    """Encode (B, T, F) numeric and (B, T, C) integer categorical inputs to (B, T, width)."""

    def __init__(
        self,
        kind: str,
        numeric: int,
        categorical: int,
        vocabulary: int,
        record_dim: int = 64,
        field_dim: int = 16,
    ) -> None:
        super().__init__()
        if kind not in ENCODINGS:
            raise ValueError(f"unknown encoding {kind!r}; choose one of {', '.join(ENCODINGS)}")
        self.kind, self.vocabulary, self.categorical = kind, vocabulary, categorical
        flat = numeric + categorical * vocabulary
        self.record: nn.Linear | None = None
        self.fields: nn.ModuleList | None = None
        if kind == "none":
            self.width = flat
        elif kind.startswith("record"):
            self.record = nn.Linear(flat, record_dim, bias=kind == "record")
            self.width = record_dim
        else:
            if kind == "categorical-lookup":
                layers: list[nn.Module] = [
                    nn.Embedding(vocabulary, field_dim) for _ in range(categorical)
                ]
            else:
                bias = kind == "categorical-dense"
                layers = [nn.Linear(vocabulary, field_dim, bias=bias) for _ in range(categorical)]
            self.fields = nn.ModuleList(layers)
            self.width = numeric + categorical * field_dim

    def forward(self, numeric: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        if self.kind == "categorical-lookup":
            assert self.fields is not None
            parts = [embed(categorical[..., j]) for j, embed in enumerate(self.fields)]
            return torch.cat([numeric, *parts], dim=-1)
        onehot = functional.one_hot(categorical, self.vocabulary).to(numeric.dtype)
        if self.fields is not None:
            parts = [dense(onehot[..., j, :]) for j, dense in enumerate(self.fields)]
            return torch.cat([numeric, *parts], dim=-1)
        flat = torch.cat([numeric, onehot.flatten(-2)], dim=-1)
        return flat if self.record is None else self.record(flat)
