"""The causal transformer inside a TARFlow block, with a key-value cache.

Zhai et al. 2024, "Normalizing flows are capable generative models" (TARFlow, arXiv
2412.06329), §3: each autoregressive flow block runs a causal (masked) transformer over the
token sequence. Layer ℓ computes, with pre-normalisation,

    h ← h + Attn(N(h)),   h ← h + MLP(N(h)),
    Attn: softmax(Q Kᵀ / (√(d/H)·τ) + M) V,  M_ij = −∞ for j > i,

where τ is an attention temperature (1 for the model itself; τ ≠ 1 is the "weak" model of
TARFlow's guidance for unconditional models, §3.4). Inverting a block is sequential in the
tokens, so :class:`KVCache` keeps each layer's keys and values of the tokens already decoded
and a decoding step only processes the new token(s).
"""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import Tensor, nn

from flow_core.errors import ConfigError
from flow_core.norms import make_norm

__all__ = ["CausalTransformer", "KVCache"]


class KVCache:
    """Keys and values of the tokens decoded so far, one ``(k, v)`` pair per layer."""

    def __init__(self) -> None:
        self.entries: dict[int, tuple[Tensor, Tensor]] = {}

    @property
    def length(self) -> int:
        """Number of cached tokens."""
        return 0 if not self.entries else int(self.entries[0][0].shape[2])


class _Attention(nn.Module):
    """Causal multi-head attention with a per-sample temperature and an optional cache."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (width // heads) ** -0.5
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)

    def forward(
        self,
        x: Tensor,
        layer: int,
        temperature: Tensor | None,
        cache: KVCache | None,
        commit: bool,
    ) -> Tensor:
        q, k, v = rearrange(self.qkv(x), "b n (three h e) -> three b h n e", three=3, h=self.heads)
        start = 0
        if cache is not None and layer in cache.entries:
            past_k, past_v = cache.entries[layer]
            start = past_k.shape[2]
            k, v = torch.cat([past_k, k], dim=2), torch.cat([past_v, v], dim=2)
        if cache is not None and commit:
            cache.entries[layer] = (k, v)
        logits = q @ k.transpose(-2, -1) * self.scale
        if temperature is not None:
            logits = logits / temperature.reshape(-1, 1, 1, 1)
        rows = torch.arange(start, start + x.shape[1], device=x.device)
        future = torch.arange(k.shape[2], device=x.device)[None, :] > rows[:, None]
        weights = logits.masked_fill(future, -math.inf).softmax(dim=-1)
        out: Tensor = self.out(rearrange(weights @ v, "b h n e -> b n (h e)"))
        return out


class _Layer(nn.Module):
    def __init__(self, width: int, heads: int, norm: str | None, mlp_ratio: int) -> None:
        super().__init__()
        self.norm_attention = make_norm(norm, width, nn.LayerNorm)
        self.attention = _Attention(width, heads)
        self.norm_mlp = make_norm(norm, width, nn.LayerNorm)
        self.mlp = nn.Sequential(
            nn.Linear(width, mlp_ratio * width), nn.GELU(), nn.Linear(mlp_ratio * width, width)
        )

    def forward(
        self,
        h: Tensor,
        layer: int,
        temperature: Tensor | None,
        cache: KVCache | None,
        commit: bool,
    ) -> Tensor:
        h = h + self.attention(self.norm_attention(h), layer, temperature, cache, commit)
        out: Tensor = h + self.mlp(self.norm_mlp(h))
        return out


class CausalTransformer(nn.Module):
    """``depth`` pre-norm causal layers of width ``width`` over ``(B, n, width)`` tokens.

    Args:
        kind: the owning network's name, for error messages.
        width: token width d (divisible by ``heads``).
        depth: number of layers (>= 1).
        heads: attention heads H.
        norm: a registered norm (``norm=power``), else LayerNorm.
        mlp_ratio: hidden width of each MLP, in multiples of ``width``.
    """

    def __init__(
        self,
        kind: str,
        width: int,
        depth: int,
        heads: int,
        norm: str | None = None,
        mlp_ratio: int = 4,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ConfigError(f"{kind}: depth must be >= 1, got {depth}")
        if heads < 1 or width % heads:
            raise ConfigError(
                f"{kind}: the width {width} must be divisible by heads ({heads}); choose heads "
                f"among the divisors of {width}"
            )
        self.layers = nn.ModuleList(_Layer(width, heads, norm, mlp_ratio) for _ in range(depth))
        self.final_norm = make_norm(norm, width, nn.LayerNorm)

    def forward(
        self,
        h: Tensor,
        temperature: Tensor | None = None,
        cache: KVCache | None = None,
        commit: bool = True,
    ) -> Tensor:
        """Outputs for the tokens ``h`` that follow the ``cache.length`` cached ones.

        ``commit=False`` reads the cache without appending ``h`` to it (a Jacobi iterate
        that may still change). ``temperature`` has shape ``(B,)``: τ per sample.
        """
        for index, layer in enumerate(self.layers):
            h = layer(h, index, temperature, cache, commit)
        out: Tensor = self.final_norm(h)
        return out
