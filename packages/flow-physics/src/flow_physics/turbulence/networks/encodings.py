"""Positional encodings of the factorized-attention operators.

* Gaussian Fourier features (Tancik et al. 2020, arXiv:2006.10739): γ(x) = [sin 2πBx, cos 2πBx]
  with B ~ N(0, σ²) fixed at construction, projected to the width and added once to the lifted
  field, as in IFactFormer (Yang et al. 2024, arXiv:2412.18840).
* Rotary positions (Su et al. 2021, arXiv:2104.09864) on one periodic axis: the pair
  (x_{2i}, x_{2i+1}) of a query or key at grid index p is rotated by θ_i p with θ_i = 2π i / n
  (i = 1..D/2), so that q·k depends on the relative position (p − p') mod n only.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["FourierFeatures", "rotate"]


class FourierFeatures(nn.Module):
    """Gaussian Fourier features of the grid coordinates in [0, 1)^d, projected to ``width``."""

    def __init__(self, dimension: int, width: int, features: int = 16, scale: float = 4.0) -> None:
        super().__init__()
        self.frequencies: torch.Tensor
        self.register_buffer("frequencies", torch.randn(dimension, features) * scale)
        self.project = nn.Linear(2 * features, width)

    def forward(self, grid: tuple[int, ...]) -> torch.Tensor:
        """The encoding ``[*grid, width]`` of a grid of the given shape."""
        frequencies = self.frequencies
        axes = [
            torch.arange(n, device=frequencies.device, dtype=frequencies.dtype) / n for n in grid
        ]
        coords = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)
        phase = 2 * math.pi * coords @ frequencies
        encoded: torch.Tensor = self.project(torch.cat([phase.sin(), phase.cos()], dim=-1))
        return encoded


def rotate(x: torch.Tensor) -> torch.Tensor:
    """Rotary positions along axis 1 of ``x`` (``[batch, n, heads, head_dim]``, even head_dim)."""
    n, dim = x.shape[1], x.shape[-1]
    position = torch.arange(n, device=x.device, dtype=x.dtype)
    rate = torch.arange(1, dim // 2 + 1, device=x.device, dtype=x.dtype) * (2 * math.pi / n)
    angle = (position[:, None] * rate)[None, :, None, :]
    even, odd = x[..., 0::2], x[..., 1::2]
    cos, sin = angle.cos(), angle.sin()
    return torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1).flatten(-2)
