"""A normalisation over the channels of NCHW feature maps that honours a network's ``norm=``.

``norm=None`` gives GroupNorm (gcd(8, C) groups); a registered norm name (``layernorm``,
``power`` with flow-norms, ...) is applied over the channel axis of every pixel, via
:func:`flow_core.norms.make_norm`. The convolutional networks of the restoration and
rescaling methods use it.
"""

from __future__ import annotations

import math

from einops import rearrange
from torch import Tensor, nn

from flow_core.norms import make_norm

__all__ = ["ChannelNorm"]


class ChannelNorm(nn.Module):
    """GroupNorm over channels, or the registered norm ``norm`` applied over the channel axis."""

    def __init__(self, channels: int, norm: str | None) -> None:
        super().__init__()
        self.channel_last = norm is not None
        self.norm = make_norm(norm, channels, lambda c: nn.GroupNorm(math.gcd(8, c), c))

    def forward(self, x: Tensor) -> Tensor:
        if self.channel_last:
            out: Tensor = rearrange(
                self.norm(rearrange(x, "b c h w -> b h w c")), "b h w c -> b c h w"
            )
        else:
            out = self.norm(x)
        return out
