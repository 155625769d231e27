"""Batch Normalization for sequences (Ioffe & Szegedy 2015), with masking of padded positions.

Per feature c, over the valid positions B of the batch (all tokens of all sequences):
μ_B = mean_B(x), σ_B² = mean_B((x − μ_B)²), y = γ·(x − μ_B)/√(σ_B² + ε) + β in training, and
running estimates μ ← (1 − m)·μ + m·μ_B, σ² ← (1 − m)·σ² + m·σ_B²·|B|/(|B| − 1) used at
inference — torch's BatchNorm conventions. Without a mask it *is* ``F.batch_norm`` on the
``(tokens, features)`` view, equal to :class:`torch.nn.BatchNorm1d`; with a mask the padded
positions are normalised with the valid positions' statistics but never enter them. This is the
"naive BN" that the PowerNorm paper shows degrading transformers.
"""

from __future__ import annotations

import torch
from torch import nn

from flow_core.errors import ConfigError
from flow_norms.norms._inputs import NormInputError, check_positive, flatten

__all__ = ["SequenceBatchNorm"]


class SequenceBatchNorm(nn.BatchNorm1d):
    """BatchNorm over every valid token of a channels-last batch ``(..., num_features)``."""

    def __init__(
        self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True
    ) -> None:
        check_positive("eps", eps)
        if not 0.0 < momentum <= 1.0:
            raise ConfigError(f"momentum must be in (0, 1], got {momentum}")
        super().__init__(num_features, eps=eps, momentum=momentum, affine=affine)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        flat, valid = flatten(x, self.num_features, padding_mask, "SequenceBatchNorm")
        if valid is None or not self.training:
            return super().forward(flat).reshape(x.shape)
        rows = flat[valid]
        if rows.shape[0] < 2:
            raise NormInputError(
                "SequenceBatchNorm needs at least 2 valid (unpadded) positions in a training"
                f" batch, got {rows.shape[0]}"
            )
        var, mean = torch.var_mean(rows, dim=0, correction=0)
        with torch.no_grad():
            n = rows.shape[0]
            momentum = float(self.momentum if self.momentum is not None else 0.1)
            assert self.running_mean is not None and self.running_var is not None
            self.running_mean.lerp_(mean, momentum)
            self.running_var.lerp_(var * (n / (n - 1)), momentum)
            if self.num_batches_tracked is not None:
                self.num_batches_tracked += 1
        out = (flat - mean) * torch.rsqrt(var + self.eps)
        if self.weight is not None and self.bias is not None:
            out = out * self.weight + self.bias
        return out.reshape(x.shape)
