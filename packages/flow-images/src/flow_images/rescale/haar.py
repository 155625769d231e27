"""The Haar wavelet split of IRN's downscaling module (Xiao et al. 2020, arXiv 2005.05650).

Each 2×2 block (a b / c d) of every channel becomes four subbands at half resolution:

    LL = (a + b + c + d)/4,  LH = (a − b + c − d)/4,  HL = (a + b − c − d)/4,
    HH = (a − b − c + d)/4,

so LL is the 2×2 average (a viewable low-resolution image). The output holds the subbands
band by band, ``[LL(all C), LH(all C), HL(all C), HH(all C)]``: its first C channels are the
low-pass image. :func:`haar_merge` is the exact inverse.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor

from flow_core.errors import FlowError

__all__ = ["haar_merge", "haar_split"]

_BANDS = torch.tensor(
    [[1.0, 1.0, 1.0, 1.0], [1.0, -1.0, 1.0, -1.0], [1.0, 1.0, -1.0, -1.0], [1.0, -1.0, -1.0, 1.0]]
)


def haar_split(x: Tensor) -> Tensor:
    """``(B, C, H, W)`` → ``(B, 4C, H/2, W/2)``, band-major (see the module docstring)."""
    if x.ndim != 4 or x.shape[2] % 2 or x.shape[3] % 2:
        raise FlowError(
            f"haar_split: images must be (B, C, H, W) with even H, W; got {tuple(x.shape)}"
        )
    blocks = rearrange(x, "b c (h i) (w j) -> b c h w (i j)", i=2, j=2)
    bands = torch.einsum("bchwk,nk->bnchw", blocks, _BANDS.to(x)) / 4
    return rearrange(bands, "b n c h w -> b (n c) h w")


def haar_merge(bands: Tensor) -> Tensor:
    """The inverse of :func:`haar_split`: ``(B, 4C, h, w)`` → ``(B, C, 2h, 2w)``."""
    if bands.ndim != 4 or bands.shape[1] % 4:
        raise FlowError(f"haar_merge: expected (B, 4C, h, w), got {tuple(bands.shape)}")
    split = rearrange(bands, "b (n c) h w -> b n c h w", n=4)
    blocks = torch.einsum("bnchw,nk->bchwk", split, _BANDS.to(bands))
    return rearrange(blocks, "b c h w (i j) -> b c (h i) (w j)", i=2, j=2)
