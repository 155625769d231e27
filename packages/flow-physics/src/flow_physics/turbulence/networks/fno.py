"""Fourier neural operator (Li et al. 2021, arXiv:2010.08895) and its implicit, weight-tied
variant IFNO (You et al. 2022, arXiv:2207.05209), on 2 or 3 periodic axes.

A Fourier layer on channels ``[B, C, *grid]`` is::

    L(h) = σ( F⁻¹[ R · (F h)|_{|k_i| < m} ] + W h ),

with R a learned complex tensor on the lowest ``modes`` frequencies of every axis (both signs
on all but the last, rFFT axis) and W a pointwise linear map. FNO stacks ``depth`` layers with
their own weights (the last without σ); IFNO applies one shared layer ``depth`` times as
h ← h + L(h)/depth. Both lift the input pointwise to ``width`` and project width → 2·width → C.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from flow_core.norms import make_norm

__all__ = ["FNO", "IFNO", "FourierLayer", "SpectralConv"]


class SpectralConv(nn.Module):
    """``F⁻¹[R · (F h)]`` on the lowest ``modes`` frequencies of each of ``dimension`` axes."""

    def __init__(self, width: int, modes: int, dimension: int) -> None:
        super().__init__()
        self.modes, self.dimension = modes, dimension
        shape = (width, width, *(2 * modes,) * (dimension - 1), modes)
        scale = 1.0 / (width * width)
        self.weight = nn.Parameter(scale * torch.rand(*shape, dtype=torch.cfloat))

    def _indices(self, grid: tuple[int, ...], device: torch.device) -> list[torch.Tensor]:
        m = self.modes
        if min(grid) < 2 * m:
            raise ValueError(f"modes={m} needs at least {2 * m} points per axis, got {grid}")
        both = [torch.cat([torch.arange(m), torch.arange(n - m, n)]).to(device) for n in grid[:-1]]
        return [*both, torch.arange(m, device=device)]

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        grid = tuple(h.shape[2:])
        dims = tuple(range(2, h.dim()))
        h_hat = torch.fft.rfftn(h, dim=dims)
        index = self._indices(grid, h.device)
        low = h_hat
        for axis, idx in zip(dims, index, strict=True):
            low = low.index_select(axis, idx)
        letters = "xyz"[: self.dimension]
        mixed = torch.einsum(f"bi{letters},io{letters}->bo{letters}", low, self.weight)
        out = torch.zeros_like(h_hat)
        where: tuple[Any, ...] = (slice(None), slice(None), *torch.meshgrid(*index, indexing="ij"))
        out[where] = mixed
        result: torch.Tensor = torch.fft.irfftn(out, s=grid, dim=dims)
        return result


class FourierLayer(nn.Module):
    """``SpectralConv(h) + W h`` followed by an optional norm (``norm=``, channels last)."""

    def __init__(self, width: int, modes: int, dimension: int, norm: str | None = None) -> None:
        super().__init__()
        self.spectral = SpectralConv(width, modes, dimension)
        self.pointwise = nn.Linear(width, width)
        self.norm = make_norm(norm, width, lambda _: nn.Identity())

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``h``: ``[B, width, *grid]``; returns the same shape (before the activation)."""
        last = h.movedim(1, -1)
        out: torch.Tensor = self.norm(self.spectral(h).movedim(1, -1) + self.pointwise(last))
        return out.movedim(-1, 1)


class _Operator(nn.Module):
    """Pointwise lift and projection around the Fourier layers."""

    def __init__(self, channels: int, width: int) -> None:
        super().__init__()
        self.lift = nn.Linear(channels, width)
        self.project = nn.Sequential(
            nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, channels)
        )

    def lifted(self, u: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.lift(u.movedim(1, -1)).movedim(-1, 1)
        return out

    def projected(self, h: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.project(h.movedim(1, -1)).movedim(-1, 1)
        return out


class FNO(_Operator):
    """``depth`` Fourier layers with their own weights; see the module docstring."""

    def __init__(
        self,
        channels: int = 2,
        dimension: int = 2,
        width: int = 24,
        depth: int = 4,
        modes: int = 8,
        norm: str | None = None,
    ) -> None:
        super().__init__(channels, width)
        self.layers = nn.ModuleList(
            FourierLayer(width, modes, dimension, norm) for _ in range(depth)
        )

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        h = self.lifted(u)
        for index, layer in enumerate(self.layers):
            h = layer(h)
            if index < len(self.layers) - 1:
                h = nn.functional.gelu(h)
        return self.projected(h)


class IFNO(_Operator):
    """One shared Fourier layer applied ``depth`` times, h ← h + σ(L h)/depth (implicit FNO)."""

    def __init__(
        self,
        channels: int = 2,
        dimension: int = 2,
        width: int = 32,
        depth: int = 4,
        modes: int = 8,
        norm: str | None = None,
    ) -> None:
        super().__init__(channels, width)
        self.depth = depth
        self.layer = FourierLayer(width, modes, dimension, norm)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        h = self.lifted(u)
        for _ in range(self.depth):
            h = h + nn.functional.gelu(self.layer(h)) / self.depth
        return self.projected(h)
