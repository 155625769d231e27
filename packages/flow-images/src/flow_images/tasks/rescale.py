"""``images.rescale``: invertible image rescaling (IRN, Xiao et al. 2020, arXiv 2005.05650),
optionally with the dual latent (Zhang et al. 2022, ACM MM).

An invertible network (:class:`~flow_images.rescale.model.InvertibleRescaler`) maps 32×32
photo patches (scikit-image's photographs, split by photograph) to a ``scale``× smaller
image y plus a latent z; it is trained jointly for downscaling and upscaling
(:class:`~flow_images.rescale.objective.RescaleObjective`), and ``dual_channels = d > 0`` adds
the downscaling latent z_d. On the held-out test patches the task reports:

- the upscaled image f⁻¹(Q(y), z ~ N(0, I)) against the original: PSNR and SSIM, next to
  bicubic down-and-up (``psnr_up`` against ``psnr_up_bicubic``);
- the downscaled image y against the bicubic downscaled one (``psnr_lr``, ``ssim_lr``);
- ``max_inverse_error``: max |f⁻¹(f(x)) − x| with the true latent (the network is a bijection);
- dual variant: ``lr_spread``, the mean |y(z_d) − y(z_d')| between two draws of z_d.

PSNR/SSIM are scikit-image's on [−1, 1] (data range 2), on RGB rather than the Y channel,
without border cropping. A figure shows the reference, both low-resolution images and both
upscaled images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, cast

import torch
import torch.nn.functional as F
from torch import Tensor

from flow_core.errors import ConfigError
from flow_core.training import TrainSettings, train, training
from flow_images.data import load_dataset
from flow_images.figures import save_image_grid
from flow_images.metrics import psnr, ssim
from flow_images.rescale import (
    InvertibleRescaler,
    RescaleObjective,
    bicubic_down,
    bicubic_up,
    quantize,
)

if TYPE_CHECKING:
    from flow_core.runner import RunContext

__all__ = ["Rescale", "RescaleConfig"]

_EVAL_SEED = 6_700_417
_SHOWN = 8


@dataclass(frozen=True)
class RescaleConfig:
    """Configuration of ``images.rescale`` (defaults: 2× on photo patches, a few CPU minutes)."""

    scale: int = 2
    dual_channels: int = 0
    blocks: int = 4
    hidden: int = 32
    clamp: float = 1.0
    norm: str | None = None
    lr_weight: float = 16.0
    hr_weight: float = 1.0
    z_weight: float = 1.0
    eval_samples: int = 256
    train: TrainSettings = training(
        steps=1500, batch_size=16, lr=5e-4, grad_clip=10.0, log_every=100
    )

    def __post_init__(self) -> None:
        if self.scale not in (2, 4):
            raise ConfigError(f"scale must be 2 or 4, got {self.scale}")
        if self.eval_samples < 1:
            raise ConfigError(f"eval_samples must be >= 1, got {self.eval_samples}")


class Rescale:
    """Invertible rescaling against bicubic; see the module docstring."""

    Config: ClassVar[type[RescaleConfig]] = RescaleConfig

    def run(self, config: RescaleConfig, ctx: RunContext) -> dict[str, float]:
        train_images = load_dataset("patches", "train").images
        test_images = load_dataset("patches", "test").images[: config.eval_samples]
        torch.manual_seed(ctx.seed)
        model = InvertibleRescaler(
            train_images.shape[1],
            config.scale,
            config.blocks,
            config.hidden,
            config.clamp,
            config.dual_channels,
            config.norm,
        )
        objective = RescaleObjective(config.lr_weight, config.hr_weight, config.z_weight)
        size = config.train.batch_size

        def batches(generator: torch.Generator) -> dict[str, Tensor]:
            index = torch.randint(0, train_images.shape[0], (size,), generator=generator)
            return {"x1": train_images[index]}

        result = train(ctx, model, objective, batches, config.train)
        trained = cast(InvertibleRescaler, result.eval_model).to(ctx.device).eval()
        metrics, figure = measure(trained, test_images, ctx.device, ctx.seed)
        metrics["train_loss"] = result.metrics.get("loss", float("nan"))
        if ctx.is_main:
            _report(ctx, config, metrics, figure)
        return metrics

    def evaluate(self, config: RescaleConfig, ctx: RunContext) -> dict[str, float]:
        """``flow eval``: the network loads its checkpoint, then the test patches are measured."""
        return self.run(config, ctx)


@torch.no_grad()
def measure(
    model: InvertibleRescaler, images: Tensor, device: torch.device, seed: int = 0
) -> tuple[dict[str, float], Tensor]:
    """The metrics of the module docstring on ``images``, and the figure's rows."""
    generator = torch.Generator().manual_seed(_EVAL_SEED + seed)
    x = images.to(device)
    z_d = model.sample_dual(x.cpu(), generator)
    z_d = None if z_d is None else z_d.to(device)
    y, z = model(x, z_d)
    inverted, _ = model.inverse(y, z)
    lr = quantize(y).clamp(-1, 1)
    upscaled, _ = model.inverse(lr, model.sample_latent(lr.cpu(), generator).to(device))
    upscaled = upscaled.clamp(-1, 1).cpu()
    reference_lr = quantize(bicubic_down(x, model.scale)).clamp(-1, 1)
    bicubic = bicubic_up(reference_lr, model.scale).clamp(-1, 1).cpu()
    lr, reference_lr, x = lr.cpu(), reference_lr.cpu(), x.cpu()
    metrics = {
        "psnr_up": psnr(upscaled, x),
        "ssim_up": ssim(upscaled, x),
        "psnr_up_bicubic": psnr(bicubic, x),
        "ssim_up_bicubic": ssim(bicubic, x),
        "psnr_lr": psnr(lr, reference_lr),
        "ssim_lr": ssim(lr, reference_lr),
        "max_inverse_error": float((inverted.cpu() - x).abs().max()),
    }
    other = model.sample_dual(x, generator)
    if other is not None:
        y_other, _ = model(x.to(device), other.to(device))
        metrics["lr_spread"] = float((y_other.cpu() - y.cpu()).abs().mean())
    shown = min(_SHOWN, len(x))

    def big(small: Tensor) -> Tensor:
        return F.interpolate(small[:shown], size=x.shape[-2:], mode="nearest")

    rows = [x[:shown], big(reference_lr), big(lr), bicubic[:shown], upscaled[:shown]]
    return metrics, torch.cat(rows)


def _report(
    ctx: RunContext, config: RescaleConfig, metrics: dict[str, float], figure: Tensor
) -> None:
    variant = (
        f"dual latent (d = {config.dual_channels})" if config.dual_channels else "single latent"
    )
    ctx.report.add_text(
        f"{config.scale}x invertible rescaling, {variant}, {config.blocks} coupling blocks per"
        f" scale, {config.train.steps} steps of batch {config.train.batch_size}; measured on the"
        " held-out test photographs' 32x32 patches (PSNR/SSIM on RGB in [-1, 1])."
    )
    rows = [
        {
            "image": "upscaled",
            "ours PSNR": metrics["psnr_up"],
            "ours SSIM": metrics["ssim_up"],
            "bicubic PSNR": metrics["psnr_up_bicubic"],
            "bicubic SSIM": metrics["ssim_up_bicubic"],
        },
    ]
    ctx.report.add_table("Upscaled image against the original", rows)
    ctx.report.add_table(
        "Downscaled image against the bicubic downscaled one",
        [{"PSNR": metrics["psnr_lr"], "SSIM": metrics["ssim_lr"]}],
    )
    shown = figure.shape[0] // 5
    caption = "rows: reference, bicubic LR, our LR (both shown enlarged), bicubic up, our upscaled"
    save_image_grid(ctx.report.add_figure("rescaling.png", caption), figure, shown, 2)
