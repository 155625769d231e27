"""ARFlow's causal transformer and sampler (Hui et al. 2025, arXiv 2501.16085).

A sequence of L images x^(1), …, x^(L) at increasing times t_1 < … < t_L (t = 0 noise,
t = 1 data) is cut into p×p patches, T tokens per image, embedded with a position embedding
(within the image). Each image's time and the class label give a condition vector that
modulates its tokens through adaLN-zero (:class:`~flow_images.networks.blocks.AdaLNBlock`),
and every block's attention is the hybrid attention of :mod:`~flow_images.arflow.attention`:
full within an image, causal linear across images. The output of image i's tokens is its
velocity v_i, which therefore depends on image i and its noisier predecessors only.

**Sampling** (:meth:`ARFlowModel.sample`) is Euler on the grid t_i = (i − 1)/L, i = 1 … L,
where the context of step i is the sampler's own earlier states:

    x_{t_1} = ε,  x_{t_{i+1}} = x_{t_i} + (1/L)·v_i(x_{t_1}, …, x_{t_i}),

L network calls (NFE = L), each on the states so far.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from einops import rearrange
from torch import Tensor, nn

from flow_core.errors import ConfigError, FlowError
from flow_core.models import MAX_FREQUENCY
from flow_images.arflow.attention import HybridAttention
from flow_images.networks.blocks import AdaLNBlock, zero_linear
from flow_images.networks.embedding import ConditionEmbedding

__all__ = ["ARFlowModel"]

_TIME_FEATURES = 64


class ARFlowModel(nn.Module):
    """v(x^(1..L), t_1..L, c) → velocities ``(B, L, C, S, S)``; see the module docstring.

    Args:
        channels, image_size: C and S of each image.
        num_classes: class labels (``cond`` ∈ [0, num_classes], num_classes = null).
        patch_size: p (divides S).
        width, depth, heads: the transformer's token width, blocks and heads.
        norm: ``None`` (LayerNorm) or a registered norm for every block.
    """

    model_kind: ClassVar[str] = "arflow"

    def __init__(
        self,
        channels: int = 1,
        image_size: int = 8,
        num_classes: int = 10,
        patch_size: int = 2,
        width: int = 64,
        depth: int = 4,
        heads: int = 4,
        norm: str | None = None,
    ) -> None:
        super().__init__()
        if min(channels, image_size, patch_size, width, depth) < 1 or image_size % patch_size:
            raise ConfigError(
                f"arflow: patch_size {patch_size} must divide image_size {image_size}, and"
                " channels, width and depth must be >= 1"
            )
        self.channels = channels
        self.image_size = image_size
        self.num_classes = num_classes
        self.patch_size = patch_size
        self.tokens = (image_size // patch_size) ** 2
        self.embed = nn.Linear(channels * patch_size**2, width)
        self.position = nn.Parameter(torch.randn(1, 1, self.tokens, width) * 0.02)
        self.condition = ConditionEmbedding(
            "arflow", 1, width, num_classes, _TIME_FEATURES, MAX_FREQUENCY
        )
        self.blocks = nn.ModuleList(
            [
                AdaLNBlock(width, heads, norm, attention=HybridAttention(width, heads, self.tokens))
                for _ in range(depth)
            ]
        )
        self.out = zero_linear(width, channels * patch_size**2)

    @property
    def null_label(self) -> int:
        """The label meaning "no condition" (``num_classes``)."""
        return self.num_classes

    def forward(self, x: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        """Velocities of a sequence ``x`` ``(B, L, C, S, S)`` at times ``t`` ``(B, L)``."""
        expected = (self.channels, self.image_size, self.image_size)
        if x.ndim != 5 or tuple(x.shape[2:]) != expected or tuple(t.shape) != tuple(x.shape[:2]):
            raise FlowError(
                f"arflow: x must be (B, L, {', '.join(map(str, expected))}) and t (B, L); got"
                f" {tuple(x.shape)} and {tuple(t.shape)}"
            )
        batch, length = x.shape[:2]
        p = self.patch_size
        patches = rearrange(x, "b l c (h p) (w q) -> b l (h w) (c p q)", p=p, q=p)
        h = self.embed(patches) + self.position
        labels = None if cond is None else cond.repeat_interleave(length)
        emb = self.condition([t.reshape(-1).to(x.dtype)], labels)
        emb = rearrange(emb, "(b l) d -> b l 1 d", b=batch).expand(-1, -1, self.tokens, -1)
        h, emb = (rearrange(u, "b l t d -> b (l t) d") for u in (h, emb))
        for block in self.blocks:
            h = block(h, emb)
        side = self.image_size // p
        out: Tensor = rearrange(
            self.out(h),
            "b (l h w) (c p q) -> b l c (h p) (w q)",
            l=length,
            h=side,
            w=side,
            p=p,
            q=p,
        )
        return out

    @torch.no_grad()
    def sample(self, noise: Tensor, cond: Tensor | None, steps: int) -> Tensor:
        """Images from ``noise`` ``(B, C, S, S)`` in ``steps`` Euler steps, each conditioned on
        the sampler's earlier states (see the module docstring)."""
        if steps < 1:
            raise ConfigError(f"arflow: steps must be >= 1, got {steps}")
        states = [noise]
        grid = torch.arange(steps, dtype=noise.dtype, device=noise.device) / steps
        for i in range(steps):
            times = grid[: i + 1].expand(noise.shape[0], -1)
            velocity = self(torch.stack(states, dim=1), times, cond)[:, -1]
            states.append(states[-1] + velocity / steps)
        return states[-1]
