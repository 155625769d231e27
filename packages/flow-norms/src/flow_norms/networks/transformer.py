"""A small decoder-only (causal) transformer whose normalisation layers are chosen by name.

Pre-norm blocks x ← x + Attn(N₁(x)), x ← x + MLP(N₂(x)), a final norm and a linear head
(Radford et al. 2019 layout). Every norm is built by ``norm_factory(num_features)`` and called
as ``norm(x, padding_mask)``, the calling convention of all ``norm`` components, so batch-
statistic norms (``batch``, ``power``) never see padded positions.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CausalTransformer"]

NormFactory = Callable[[int], nn.Module]


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, norm_factory: NormFactory) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = norm_factory(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = norm_factory(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor) -> torch.Tensor:
        batch, length, dim = x.shape
        q, k, v = (
            self.qkv(self.norm1(x, padding_mask))
            .view(batch, length, 3, self.heads, dim // self.heads)
            .permute(2, 0, 3, 1, 4)
        )
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(attended.transpose(1, 2).reshape(batch, length, dim))
        out: torch.Tensor = x + self.mlp(self.norm2(x, padding_mask))
        return out


class CausalTransformer(nn.Module):
    """Token and learned position embeddings, ``depth`` pre-norm blocks, final norm, head.

    ``forward(tokens, padding_mask)`` maps (B, T) token ids to (B, T, vocab) logits; sequences
    are right-padded, so causal attention never lets a real token see padding.
    """

    def __init__(
        self,
        vocab_size: int,
        max_len: int,
        dim: int,
        depth: int,
        heads: int,
        norm_factory: NormFactory,
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim)
        self.position = nn.Parameter(torch.randn(max_len, dim) * 0.02)
        self.blocks = nn.ModuleList(_Block(dim, heads, norm_factory) for _ in range(depth))
        self.norm = norm_factory(dim)
        self.head = nn.Linear(dim, vocab_size)

    def forward(self, tokens: torch.Tensor, padding_mask: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens) + self.position[: tokens.shape[1]]
        for block in self.blocks:
            x = block(x, padding_mask)
        out: torch.Tensor = self.head(self.norm(x, padding_mask))
        return out
