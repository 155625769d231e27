"""The joint downscaling/upscaling loss of IRN (Xiao et al. 2020, arXiv 2005.05650).

For a batch of high-resolution images x (and, in the dual variant, z_d ~ N(0, I)):

    (y, z) = f(x, z_d),  ŷ = Q(y)  (8-bit rounding, straight-through gradient),
    L_LR = Σ‖y − bicubic↓(x)‖² / B          (the LR image looks like a downscaled one),
    L_HR = Σ|f⁻¹(ŷ, z')_x − x| / B,  z' ~ N(0, I)   (upscaling with a fresh latent),
    L_z  = Σ‖z‖² / (2B)                      (z case-agnostic: the Gaussian NLL up to constants),
    L_d  = Σ‖ẑ_d‖² / (2B)                    (dual: the recovered z_d stays N(0, I)),
    L    = λ_LR·L_LR + λ_HR·L_HR + λ_z·(L_z + L_d),

with λ_LR = 16, λ_HR = 1, λ_z = 1 by default: IRN's numbers, which IRN applies to images in
[0, 1]. Our images lie in [−1, 1] (differences and z twice as large), where IRN's balance is
λ_LR = 8, λ_HR = 1, λ_z = 1 (IRN's loss times 2): the default weighs the LR guidance twice
as much as IRN, not tuned. bicubic↓ is torch's anti-aliased bicubic resize.
"""

from __future__ import annotations

from typing import ClassVar, cast

import torch.nn.functional as F
from torch import Tensor, nn

from flow_core.errors import ConfigError, FlowError
from flow_core.gpu import unwrap
from flow_core.protocols import Batch
from flow_images.rescale.model import InvertibleRescaler

__all__ = ["RescaleObjective", "bicubic_down", "bicubic_up", "quantize"]

_LEVELS = 255


def bicubic_down(x: Tensor, scale: int) -> Tensor:
    """Anti-aliased bicubic downscaling by ``scale``."""
    return F.interpolate(
        x, scale_factor=1 / scale, mode="bicubic", antialias=True, align_corners=False
    )


def bicubic_up(y: Tensor, scale: int) -> Tensor:
    """Bicubic upscaling by ``scale`` (the baseline's second half)."""
    return F.interpolate(y, scale_factor=scale, mode="bicubic", align_corners=False)


def quantize(y: Tensor) -> Tensor:
    """Round [−1, 1] images to 8 bits with a straight-through gradient (values are clamped)."""
    levels = ((y.clamp(-1, 1) + 1) * (_LEVELS / 2)).round() * (2 / _LEVELS) - 1
    return y + (levels - y).detach()


class RescaleObjective:
    """``loss, metrics = objective(rescaler, {"x1": images})``; see the module docstring."""

    model_kind: ClassVar[str] = "rescaling"

    def __init__(
        self, lr_weight: float = 16.0, hr_weight: float = 1.0, z_weight: float = 1.0
    ) -> None:
        for name, value in (
            ("lr_weight", lr_weight),
            ("hr_weight", hr_weight),
            ("z_weight", z_weight),
        ):
            if not value >= 0:
                raise ConfigError(f"rescale objective: {name} must be >= 0, got {value}")
        self.weights = (float(lr_weight), float(hr_weight), float(z_weight))

    def __call__(self, model: nn.Module, batch: Batch) -> tuple[Tensor, dict[str, float]]:
        if "x1" not in batch:
            raise FlowError(f"rescale objective: the batch needs key 'x1'; got {sorted(batch)}")
        x = batch["x1"]
        count = x.shape[0]
        core = cast(InvertibleRescaler, unwrap(model))
        y, z = model(x, core.sample_dual(x))
        lr = (y - bicubic_down(x, core.scale)).pow(2).sum() / count
        upscaled, z_d = core.inverse(quantize(y), core.sample_latent(y))
        hr = (upscaled - x).abs().sum() / count
        latent = z.pow(2).sum() / (2 * count)
        if z_d is not None:
            latent = latent + z_d.pow(2).sum() / (2 * count)
        lr_w, hr_w, z_w = self.weights
        loss = lr_w * lr + hr_w * hr + z_w * latent
        metrics = {"loss": float(loss.detach()), "lr_mse": float(lr.detach()) / y[0].numel()}
        metrics["hr_l1"] = float(hr.detach()) / x[0].numel()
        return loss, metrics
