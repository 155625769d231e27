"""ARFlow's hybrid attention (Hui et al. 2025, arXiv 2501.16085).

A sequence holds L images ("chunks") of T tokens each. Within an image every token attends to
every other token of that image with softmax attention; across images, tokens of image i
attend to the tokens of the earlier images j < i through causal linear attention
(Katharopoulos et al. 2020) with the feature map φ(u) = elu(u) + 1:

    inter_n = φ(q_n)ᵀ S_i / (φ(q_n)ᵀ z_i + δ),  S_i = Σ_{j<i} Σ_{m ∈ j} φ(k_m) v_mᵀ,
    z_i = Σ_{j<i} Σ_{m ∈ j} φ(k_m),

for token n of image i (image 1 has no predecessors: inter = 0). :func:`chunked_linear_attention`
computes S_i and z_i once per image, by an exclusive cumulative sum over the per-image sums —
O(L·T·E²) instead of the O((L·T)²·E) of :func:`naive_linear_attention`, the masked matrix form
both are tested against. The output of :class:`HybridAttention` is the projection of the sum of
both parts; a token never sees a later image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from flow_core.errors import ConfigError, FlowError

__all__ = [
    "HybridAttention",
    "chunked_linear_attention",
    "cross_image_mask",
    "naive_linear_attention",
    "same_image_mask",
]

DELTA = 1e-6


def _features(u: Tensor) -> Tensor:
    return F.elu(u) + 1


def _check(q: Tensor, chunk: int) -> int:
    if q.ndim != 4 or chunk < 1 or q.shape[2] % chunk:
        raise FlowError(
            f"linear attention: expected (B, H, L*T, E) with T = {chunk}, got {tuple(q.shape)}"
        )
    return q.shape[2] // chunk


def chunked_linear_attention(q: Tensor, k: Tensor, v: Tensor, chunk: int) -> Tensor:
    """Causal linear attention across chunks of ``chunk`` tokens, per image state S_i."""
    images = _check(q, chunk)
    fq, fk = _features(q), _features(k)
    fk_chunks = rearrange(fk, "b h (l t) e -> b h l t e", l=images)
    v_chunks = rearrange(v, "b h (l t) e -> b h l t e", l=images)
    states = torch.einsum("bhlte,bhltf->bhlef", fk_chunks, v_chunks)
    sums = fk_chunks.sum(dim=3)
    states = states.cumsum(dim=2) - states  # exclusive: images before i only
    sums = sums.cumsum(dim=2) - sums
    fq_chunks = rearrange(fq, "b h (l t) e -> b h l t e", l=images)
    numerator = torch.einsum("bhlte,bhlef->bhltf", fq_chunks, states)
    denominator = torch.einsum("bhlte,bhle->bhlt", fq_chunks, sums)[..., None] + DELTA
    return rearrange(numerator / denominator, "b h l t f -> b h (l t) f")


def cross_image_mask(images: int, chunk: int, device: torch.device | None = None) -> Tensor:
    """``(N, N)`` boolean: token n may see token m of an *earlier* image."""
    owner = torch.arange(images * chunk, device=device) // chunk
    return owner[None, :] < owner[:, None]


def same_image_mask(images: int, chunk: int, device: torch.device | None = None) -> Tensor:
    """``(N, N)`` boolean: tokens n and m belong to the same image."""
    owner = torch.arange(images * chunk, device=device) // chunk
    return owner[None, :] == owner[:, None]


def naive_linear_attention(q: Tensor, k: Tensor, v: Tensor, chunk: int) -> Tensor:
    """The same as :func:`chunked_linear_attention`, as one masked (N × N) matrix."""
    images = _check(q, chunk)
    weights = _features(q) @ _features(k).transpose(-2, -1)
    weights = weights * cross_image_mask(images, chunk, q.device).to(weights)
    out: Tensor = (weights @ v) / (weights.sum(dim=-1, keepdim=True) + DELTA)
    return out


class HybridAttention(nn.Module):
    """Softmax attention within each image plus causal linear attention across images.

    Args:
        width: token width (divisible by ``heads``).
        heads: attention heads.
        tokens_per_image: T, the chunk size.
    """

    def __init__(self, width: int, heads: int, tokens_per_image: int) -> None:
        super().__init__()
        if heads < 1 or width % heads or tokens_per_image < 1:
            raise ConfigError(
                f"arflow: width {width} must be divisible by heads ({heads}) and"
                f" tokens_per_image ({tokens_per_image}) >= 1"
            )
        self.heads = heads
        self.chunk = tokens_per_image
        self.scale = (width // heads) ** -0.5
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """Tokens ``(B, L·T, width)``; ``mask`` is unused (the structure fixes the masks)."""
        q, k, v = rearrange(self.qkv(x), "b n (three h e) -> three b h n e", three=3, h=self.heads)
        images = _check(q, self.chunk)
        q_img, k_img, v_img = (
            rearrange(u, "b h (l t) e -> b h l t e", l=images) for u in (q, k, v)
        )
        scores = (q_img @ k_img.transpose(-2, -1) * self.scale).softmax(dim=-1)
        intra = rearrange(scores @ v_img, "b h l t e -> b h (l t) e")
        inter = chunked_linear_attention(q, k, v, self.chunk)
        out: Tensor = self.out(rearrange(intra + inter, "b h n e -> b n (h e)"))
        return out
