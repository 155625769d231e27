"""Transformer pieces of the autoregressive image flows (FlowAR, ARFlow).

:class:`MaskedAttention` is multi-head self-attention (Vaswani et al. 2017) with an optional
boolean mask (``True`` = may attend), written out as plain matrix products like
:class:`~flow_images.networks.attention.SelfAttention`. :class:`AdaLNBlock` is a transformer
block with adaLN-zero conditioning (Peebles & Xie 2023) whose condition may be one vector per
sample ``(B, d)`` or one per token ``(B, N, d)`` — the latter is FlowAR's spatial adaLN
(Ren et al. 2024, arXiv 2412.15205):

    x ← x + α₁ ⊙ Attention(N(x) ⊙ (1 + γ₁) + β₁),  x ← x + α₂ ⊙ MLP(N(x) ⊙ (1 + γ₂) + β₂),

with (β, γ, α) a zero-initialised linear map of SiLU(condition) and N a LayerNorm without
affine parameters, or the registered norm named by ``norm``.
"""

from __future__ import annotations

import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from flow_core.errors import ConfigError
from flow_core.norms import make_norm

__all__ = ["AdaLNBlock", "MaskedAttention", "zero_init", "zero_linear"]


def zero_init(layer: nn.Linear | nn.Conv2d) -> None:
    """Set ``layer``'s weight and bias (if any) to zero."""
    nn.init.zeros_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


def zero_linear(width_in: int, width_out: int) -> nn.Linear:
    """A linear layer whose weight and bias start at zero."""
    layer = nn.Linear(width_in, width_out)
    zero_init(layer)
    return layer


class MaskedAttention(nn.Module):
    """Multi-head self-attention over ``(B, N, width)`` with an optional ``(N, N)`` mask."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        if heads < 1 or width % heads:
            raise ConfigError(f"attention: width {width} must be divisible by heads ({heads})")
        self.heads = heads
        self.scale = (width // heads) ** -0.5
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        q, k, v = rearrange(self.qkv(x), "b n (three h e) -> three b h n e", three=3, h=self.heads)
        scores = q @ k.transpose(-2, -1) * self.scale
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        out: Tensor = self.out(rearrange(scores.softmax(dim=-1) @ v, "b h n e -> b n (h e)"))
        return out


class AdaLNBlock(nn.Module):
    """A transformer block with adaLN-zero conditioning, per sample or per token.

    ``attention`` replaces the block's :class:`MaskedAttention` by another module called as
    ``attention(tokens, mask)`` (ARFlow's hybrid attention).
    """

    def __init__(
        self,
        width: int,
        heads: int,
        norm: str | None = None,
        mlp_ratio: float = 4.0,
        attention: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.norm_attention = _norm(norm, width)
        self.attention = MaskedAttention(width, heads) if attention is None else attention
        self.norm_mlp = _norm(norm, width)
        hidden = max(1, round(width * mlp_ratio))
        self.mlp = nn.Sequential(
            nn.Linear(width, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, width)
        )
        self.modulation = zero_linear(width, 6 * width)

    def forward(self, x: Tensor, condition: Tensor, mask: Tensor | None = None) -> Tensor:
        params = self.modulation(F.silu(condition))
        if params.ndim == 2:
            params = params[:, None]
        shift1, scale1, gate1, shift2, scale2, gate2 = params.chunk(6, dim=-1)
        h = self.norm_attention(x) * (1 + scale1) + shift1
        x = x + gate1 * self.attention(h, mask)
        out: Tensor = x + gate2 * self.mlp(self.norm_mlp(x) * (1 + scale2) + shift2)
        return out


def _norm(name: str | None, width: int) -> nn.Module:
    return make_norm(
        name, width, lambda w: nn.LayerNorm(w, elementwise_affine=False, eps=1e-6), affine=False
    )
