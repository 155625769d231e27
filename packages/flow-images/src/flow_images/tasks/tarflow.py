"""``images.tarflow``: TARFlow (Zhai et al. 2024, arXiv 2412.06329) on digits or photo patches.

A stack of transformer autoregressive flow blocks (:mod:`flow_images.tarflow`) is trained by
maximum likelihood on noisy images and sampled by sequential KV-cached decoding (or
``sampler=gs-jacobi``) with classifier-free guidance on the shift and scale, then denoised by
one score step. See :mod:`flow_images.tasks.normalizing` for what is measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from flow_core.options import option
from flow_images.tasks.normalizing import NormalizingFlowConfig, NormalizingFlowTask

__all__ = ["TARFlowConfig", "TARFlowTask"]


@dataclass(frozen=True)
class TARFlowConfig(NormalizingFlowConfig):
    """Configuration of ``images.tarflow`` (defaults train in a few minutes on one CPU core)."""

    depth: int = option("flow", "depth", 1)
    blocks: int = option("flow", "blocks", 4)


class TARFlowTask(NormalizingFlowTask):
    """TARFlow on images; see the module docstring."""

    Config: ClassVar[type[TARFlowConfig]] = TARFlowConfig
