"""FlowTransformer's sequence models: transformer blocks over a window of flow tokens.

Manocchio et al. 2023 (arXiv:2304.14746), "sequential model". Each block is multi-head
self-attention (Vaswani et al. 2017, arXiv:1706.03762), ``softmax(Q Kᵀ / √d_k) V`` per head,
and a two-layer feed-forward network, each with a residual connection and a normalisation
(LayerNorm, or the registered norm named by ``norm=``). The configurations:

- ``basic``: the paper's basic transformer in encoder form, 2 blocks, 2 heads, feed-forward
  128, post-norm, ReLU (as the reference code);
- ``basic-causal``: the same in causal-decoder form (a token sees only earlier flows);
- ``gpt2``: GPT-2-style (Radford et al. 2019): pre-norm, GELU, learned positions, causal,
  a final norm; 2 blocks, 4 heads, feed-forward 256 (a CPU-sized "small" configuration);
- ``bert``: BERT-style encoder (Devlin et al. 2018, arXiv:1810.04805): post-norm, GELU,
  learned positions, bidirectional; 2 blocks, 4 heads, feed-forward 256.

Token width is the encoding's; keys, queries and values have ``key_dim`` per head (as in
Keras' ``MultiHeadAttention``, so any width works with any head count).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional

from flow_core.norms import make_norm

__all__ = ["SEQUENCE_MODELS", "SequenceConfig", "SequenceModel"]


@dataclass(frozen=True)
class SequenceConfig:
    """One configuration of the blocks (see the module docstring)."""

    layers: int
    heads: int
    feed_forward: int
    causal: bool
    pre_norm: bool
    activation: str
    positions: bool


SEQUENCE_MODELS: dict[str, SequenceConfig] = {
    "basic": SequenceConfig(2, 2, 128, False, False, "relu", False),
    "basic-causal": SequenceConfig(2, 2, 128, True, False, "relu", False),
    "gpt2": SequenceConfig(2, 4, 256, True, True, "gelu", True),
    "bert": SequenceConfig(2, 4, 256, False, False, "gelu", True),
}


class _Attention(nn.Module):
    def __init__(self, width: int, heads: int, key_dim: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.key_dim = heads, key_dim
        self.qkv = nn.Linear(width, 3 * heads * key_dim)
        self.out = nn.Linear(heads * key_dim, width)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, causal: bool) -> torch.Tensor:
        b, t, _ = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, self.key_dim).permute(2, 0, 3, 1, 4)
        p = self.dropout if self.training else 0.0
        y = functional.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=causal)
        out: torch.Tensor = self.out(y.transpose(1, 2).reshape(b, t, -1))
        return out


class _Block(nn.Module):
    def __init__(
        self, width: int, config: SequenceConfig, key_dim: int, dropout: float, norm: str | None
    ) -> None:
        super().__init__()
        self.config = config
        self.attention = _Attention(width, config.heads, key_dim, dropout)
        self.norm1 = make_norm(norm, width, nn.LayerNorm)
        self.norm2 = make_norm(norm, width, nn.LayerNorm)
        act: nn.Module = nn.GELU() if config.activation == "gelu" else nn.ReLU()
        self.mlp = nn.Sequential(
            nn.Linear(width, config.feed_forward), act, nn.Linear(config.feed_forward, width)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        causal = self.config.causal
        if self.config.pre_norm:
            x = x + self.drop(self.attention(self.norm1(x), causal))
            out: torch.Tensor = x + self.drop(self.mlp(self.norm2(x)))
            return out
        x = self.norm1(x + self.drop(self.attention(x, causal)))
        out = self.norm2(x + self.drop(self.mlp(x)))
        return out


class SequenceModel(nn.Module):
    """Blocks of one :data:`SEQUENCE_MODELS` configuration over (B, T, width) tokens."""

    def __init__(
        self,
        kind: str,
        width: int,
        max_tokens: int,
        key_dim: int = 16,
        dropout: float = 0.1,
        norm: str | None = None,
    ) -> None:
        super().__init__()
        if kind not in SEQUENCE_MODELS:
            raise ValueError(
                f"unknown sequence model {kind!r}; choose one of {', '.join(SEQUENCE_MODELS)}"
            )
        self.config = config = SEQUENCE_MODELS[kind]
        self.positions = (
            nn.Parameter(torch.zeros(1, max_tokens, width)) if config.positions else None
        )
        self.blocks = nn.ModuleList(
            [_Block(width, config, key_dim, dropout, norm) for _ in range(config.layers)]
        )
        self.final = make_norm(norm, width, nn.LayerNorm) if config.pre_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.positions is not None:
            x = x + self.positions[:, : x.shape[1]]
        for block in self.blocks:
            x = block(x)
        out: torch.Tensor = self.final(x)
        return out
