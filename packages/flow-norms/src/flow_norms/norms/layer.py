"""LayerNorm and RMSNorm with the norm-component calling convention, on torch's own kernels.

* LayerNorm (Ba, Kiros & Hinton 2016): y = γ·(x − μ)/√(σ² + ε) + β, with μ and σ² the mean and
  (biased) variance of each token over its features — identical at training and test time.
* RMSNorm (Zhang & Sennrich 2019): y = γ·x/√(mean(x²) + ε), no centring and no bias.

Both are thin subclasses of :class:`torch.nn.LayerNorm` / :class:`torch.nn.RMSNorm` (same
parameters, state-dict keys and numbers); they only add the ``padding_mask`` argument that every
norm component accepts (unused: the statistics are per token) and the input check.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from flow_norms.norms._inputs import check_positive, flatten

__all__ = ["LayerNorm", "RMSNorm"]


class LayerNorm(nn.LayerNorm):
    """Per-token LayerNorm over the last dimension (``F.layer_norm``); ``eps`` defaults to 1e-5."""

    def __init__(
        self, num_features: int, eps: float = 1e-5, affine: bool = True, bias: bool = True
    ) -> None:
        check_positive("eps", eps)
        super().__init__(num_features, eps=eps, elementwise_affine=affine, bias=bias)
        self.num_features = num_features

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        flatten(x, self.num_features, padding_mask, "LayerNorm")
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)


class RMSNorm(nn.RMSNorm):
    """Per-token RMSNorm over the last dimension (``F.rms_norm``); ``eps=None`` uses torch's
    default, the machine epsilon of the input's dtype."""

    def __init__(self, num_features: int, eps: float | None = None, affine: bool = True) -> None:
        if eps is not None:
            check_positive("eps", eps)
        super().__init__(num_features, eps=eps, elementwise_affine=affine)
        self.num_features = num_features

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        flatten(x, self.num_features, padding_mask, "RMSNorm")
        return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)
