"""IFactFormer: implicit factorized transformer for turbulence (Yang et al. 2024,
arXiv:2412.18840), building on FactFormer (Li et al. 2023, arXiv:2305.17560).

A field u ``[B, C, *grid]`` is lifted pointwise to ``width`` channels, the Fourier-feature
encoding is added once, and one weight-shared block is applied ``depth`` times as an implicit,
ODE-like iteration (as in IFNO)::

    h ← h + Block(h) / depth,

then projected width → width/2 → C. Inside the block, after a norm, the values are
V = W_v h (``heads`` heads of ``head_dim``) and, for every axis a, the field is mean-pooled over
the other axes, passed through an MLP to queries and keys, rotated by rotary positions, and
forms a low-rank kernel without softmax::

    K_a[i, j] = q_a(i) · k_a(j) / n_a.

* ``mode="chained"`` (IFactFormer-o): the kernels act one after another,
  Y = K_1 ×_1 (K_2 ×_2 (… V)), then a linear map to the width;
* ``mode="parallel"`` (IFactFormer-m): each kernel acts on V alone, Y_a = K_a ×_a V, and the
  results are concatenated, instance-normalised and mixed by Linear → GELU → Linear.

``K ×_a V`` multiplies V along spatial axis a: (K ×_a V)[.., i, ..] = Σ_j K[i, j] V[.., j, ..].
"""

from __future__ import annotations

import string

import torch
from torch import nn

from flow_core.norms import make_norm
from flow_physics.turbulence.networks.encodings import FourierFeatures, rotate

__all__ = ["FactorizedBlock", "IFactFormer", "apply_along_axis", "axis_kernel"]

MODES = ("chained", "parallel")


def axis_kernel(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """The low-rank kernel ``[B, heads, n, n]`` of queries and keys ``[B, n, heads, dim]``."""
    return torch.einsum("bihd,bjhd->bhij", q, k) / q.shape[1]


def apply_along_axis(kernel: torch.Tensor, v: torch.Tensor, axis: int) -> torch.Tensor:
    """``K ×_axis V`` for a kernel ``[B, H, n, n]`` and values ``[B, *grid, H, D]``."""
    spatial = v.dim() - 3
    letters = string.ascii_lowercase[:spatial]
    source = letters.replace(letters[axis], "j")
    target = letters.replace(letters[axis], "i")
    return torch.einsum(f"zhij,z{source}hd->z{target}hd", kernel, v)


def _instance_norm(y: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Normalise each channel of ``[B, *grid, C]`` over the grid (no affine)."""
    dims = tuple(range(1, y.dim() - 1))
    mean = y.mean(dim=dims, keepdim=True)
    var = y.var(dim=dims, keepdim=True, unbiased=False)
    return (y - mean) / torch.sqrt(var + eps)


class FactorizedBlock(nn.Module):
    """One factorized-attention block on channels-last fields ``[B, *grid, width]``."""

    def __init__(
        self,
        width: int,
        dimension: int,
        heads: int,
        head_dim: int,
        mode: str,
        norm: str | None = None,
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if head_dim % 2:
            raise ValueError(f"head_dim must be even for rotary positions, got {head_dim}")
        self.mode, self.heads, self.head_dim = mode, heads, head_dim
        inner = heads * head_dim
        self.norm = make_norm(norm, width, nn.LayerNorm)
        self.values = nn.Linear(width, inner)
        self.axis_mlps = nn.ModuleList(
            nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, 2 * inner))
            for _ in range(dimension)
        )
        self.out: nn.Module
        if mode == "parallel":
            self.out = nn.Sequential(
                nn.Linear(dimension * inner, width), nn.GELU(), nn.Linear(width, width)
            )
        else:
            self.out = nn.Linear(inner, width)

    def kernels(self, z: torch.Tensor) -> list[torch.Tensor]:
        """One kernel ``[B, H, n_a, n_a]`` per spatial axis of the normed field ``z``."""
        spatial = z.dim() - 2
        out = []
        for axis, mlp in enumerate(self.axis_mlps):
            others = tuple(1 + a for a in range(spatial) if a != axis)
            pooled = z.mean(dim=others) if others else z
            qk = mlp(pooled).unflatten(-1, (2, self.heads, self.head_dim))
            out.append(axis_kernel(rotate(qk[:, :, 0]), rotate(qk[:, :, 1])))
        return out

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        z = self.norm(h)
        v = self.values(z).unflatten(-1, (self.heads, self.head_dim))
        kernels = self.kernels(z)
        if self.mode == "chained":
            for axis, kernel in enumerate(kernels):
                v = apply_along_axis(kernel, v, axis)
            result: torch.Tensor = self.out(v.flatten(-2))
            return result
        parts = [
            apply_along_axis(kernel, v, axis).flatten(-2) for axis, kernel in enumerate(kernels)
        ]
        mixed: torch.Tensor = self.out(_instance_norm(torch.cat(parts, dim=-1)))
        return mixed


class IFactFormer(nn.Module):
    """IFactFormer-o (``mode="chained"``) or -m (``mode="parallel"``); see the module docstring."""

    def __init__(
        self,
        channels: int = 2,
        dimension: int = 2,
        width: int = 48,
        depth: int = 4,
        heads: int = 4,
        head_dim: int = 12,
        mode: str = "parallel",
        fourier_features: int = 16,
        norm: str | None = None,
    ) -> None:
        super().__init__()
        self.depth = depth
        self.lift = nn.Linear(channels, width)
        self.position = FourierFeatures(dimension, width, fourier_features)
        self.block = FactorizedBlock(width, dimension, heads, head_dim, mode, norm)
        self.project = nn.Sequential(
            nn.Linear(width, width // 2), nn.GELU(), nn.Linear(width // 2, channels)
        )

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        h = self.lift(u.movedim(1, -1))
        h = h + self.position(tuple(u.shape[2:]))
        for _ in range(self.depth):
            h = h + self.block(h) / self.depth
        out: torch.Tensor = self.project(h).movedim(-1, 1)
        return out
