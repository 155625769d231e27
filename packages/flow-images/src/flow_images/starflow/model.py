"""STARFlow's deep-shallow stack (Gu et al. 2025, "STARFlow: scaling latent normalizing flows
for high-resolution image synthesis", arXiv 2506.06276, §3.1).

TARFlow spends the same depth on every block. STARFlow puts almost all layers into one deep
block — the last in the data-to-latent direction, i.e. the first to run when sampling — and
keeps the others shallow (the released text-to-image model: 2-2-2-2-2-24). Only the deep
block reads the condition; the shallow blocks act as a learned, unconditional refinement
close to the data. The log-scales are soft-clipped as in :mod:`flow_images.tarflow.block`.
"""

from __future__ import annotations

from flow_core.errors import ConfigError
from flow_images.tarflow.model import AutoregressiveFlow

__all__ = ["STARFlow"]


class STARFlow(AutoregressiveFlow):
    """``blocks − 1`` shallow blocks of ``shallow_depth`` layers, then one of ``deep_depth``.

    Args:
        in_channels, image_size: the shape of the flow's inputs (pixels or latents).
        patch_size: patch side p.
        width, heads: every block's transformer width and heads.
        deep_depth: layers of the deep block (the only conditioned one).
        shallow_depth: layers of each shallow block.
        blocks: number of blocks (>= 1; 1 is the deep block alone).
        num_classes: class labels (0: unconditional).
        norm: a registered norm for the transformers, else LayerNorm.
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 8,
        patch_size: int = 2,
        width: int = 64,
        deep_depth: int = 5,
        shallow_depth: int = 1,
        blocks: int = 4,
        heads: int = 4,
        num_classes: int = 0,
        norm: str | None = None,
    ) -> None:
        if blocks < 1:
            raise ConfigError(f"starflow: blocks must be >= 1, got {blocks}")
        shallow = blocks - 1
        super().__init__(
            "starflow",
            in_channels,
            image_size,
            patch_size,
            width,
            [shallow_depth] * shallow + [deep_depth],
            heads,
            num_classes,
            conditioned=[False] * shallow + [True],
            norm=norm,
        )
