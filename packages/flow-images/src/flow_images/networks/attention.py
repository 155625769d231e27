"""Multi-head self-attention written out explicitly (Vaswani et al. 2017).

For tokens X ∈ R^{N×d} and each head h with queries Q_h, keys K_h, values V_h of size d/H,

    Attention(Q_h, K_h, V_h) = softmax(Q_h K_hᵀ / √(d/H)) V_h,

and the heads are concatenated and projected back to d. The products are plain matrix
products, not :func:`torch.nn.functional.scaled_dot_product_attention`: the fused CPU kernel of
the latter has no forward-mode derivative in torch 2.13, and MeanFlow differentiates the network
in forward mode.
"""

from __future__ import annotations

from einops import rearrange
from torch import Tensor, nn

from flow_core.errors import ConfigError

__all__ = ["SelfAttention"]


class SelfAttention(nn.Module):
    """Multi-head self-attention over tokens of shape ``(B, N, width)``.

    Args:
        kind: the network's name, for error messages.
        width: token width d (divisible by ``heads``).
        heads: number of heads H.
    """

    def __init__(self, kind: str, width: int, heads: int) -> None:
        super().__init__()
        if heads < 1 or width % heads:
            raise ConfigError(
                f"{kind}: the width {width} must be divisible by heads ({heads}); choose heads "
                f"among the divisors of {width}"
            )
        self.heads = heads
        self.scale = (width // heads) ** -0.5
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = rearrange(self.qkv(x), "b n (three h e) -> three b h n e", three=3, h=self.heads)
        weights = (q @ k.transpose(-2, -1) * self.scale).softmax(dim=-1)
        out: Tensor = self.out(rearrange(weights @ v, "b h n e -> b n (h e)"))
        return out
