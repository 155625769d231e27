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

``flow sample RUN`` writes the down- and upscaled held-out test patches and the bicubic ones.
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
_SAMPLE_SEED = 2_750_159
_SHOWN = 8


@dataclass(frozen=True)
class RescaleConfig:
    """Configuration of ``images.rescale`` (defaults: 2× on photo patches, a few CPU minutes).

    ``clamp`` bounds each block's log-scale, so ``blocks × clamp`` bounds how strongly the
    inverse can damp the sampled z ~ N(0, I) (by at most exp(−blocks·clamp)): IRN's 2× model
    has 8 blocks with clamp 1; we keep that product, 8, with 4 blocks and clamp 2 (with
    clamp 1 the upscaled PSNR rose more slowly in our measurements, see
    docs/benchmarks/images-restoration.md).
    """

    scale: int = 2
    dual_channels: int = 0
    blocks: int = 4
    hidden: int = 32
    clamp: float = 2.0
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
        model, loss = _train_model(config, ctx)
        test_images = load_dataset("patches", "test").images[: config.eval_samples]
        metrics, figure = measure(model, test_images, ctx.device, ctx.seed)
        metrics["train_loss"] = loss
        if ctx.is_main:
            _report(ctx, config, metrics, figure)
        return metrics

    def evaluate(self, config: RescaleConfig, ctx: RunContext) -> dict[str, float]:
        """``flow eval``: the network loads its checkpoint, then the test patches are measured."""
        return self.run(config, ctx)

    def sample(self, config: RescaleConfig, ctx: RunContext, count: int) -> dict[str, Tensor]:
        """``flow sample``: downscale ``count`` held-out test patches and upscale them back.

        Returned (in [−1, 1]): ``images`` (the originals), ``downscaled`` (the network's 8-bit
        low-resolution images), ``upscaled`` (f⁻¹ of them with z ~ N(0, I)) and ``bicubic``
        (bicubic down and up, the baseline); ``rescaling.png`` shows them.
        """
        pool = load_dataset("patches", "test").images
        if count > len(pool):
            raise ConfigError(f"--count {count}: the held-out test split holds {len(pool)} patches")
        images = pool[:count]
        model, _ = _train_model(config, ctx)
        generator = torch.Generator().manual_seed(_SAMPLE_SEED + ctx.seed)
        downscaled, upscaled = rescale(model, images, ctx.device, generator)
        reference_lr, bicubic = bicubic_baseline(images, model.scale)
        rows = _figure_rows(images, reference_lr, downscaled, bicubic, upscaled)
        _save_figure(ctx, rows)
        ctx.report.add_text(
            f"{count} held-out test patches downscaled {config.scale}x by the network and"
            " upscaled back with z ~ N(0, I), next to bicubic down and up."
        )
        return {
            "images": images,
            "downscaled": downscaled,
            "upscaled": upscaled,
            "bicubic": bicubic,
        }


def _train_model(config: RescaleConfig, ctx: RunContext) -> tuple[InvertibleRescaler, float]:
    """The trained (in eval/sample: loaded) network, in eval mode on the device, and its loss."""
    train_images = load_dataset("patches", "train").images
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
    return trained, result.metrics.get("loss", float("nan"))


@torch.no_grad()
def rescale(
    model: InvertibleRescaler, images: Tensor, device: torch.device, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """``(downscaled, upscaled)`` of ``images`` on the CPU: y quantised to 8 bits, and
    f⁻¹(Q(y), z ~ N(0, I)), both clamped to [−1, 1] (z_d ~ N(0, I) in the dual variant)."""
    x = images.to(device)
    z_d = model.sample_dual(images, generator)
    y, _ = model(x, None if z_d is None else z_d.to(device))
    lr = quantize(y).clamp(-1, 1)
    upscaled, _ = model.inverse(lr, model.sample_latent(lr.cpu(), generator).to(device))
    return lr.cpu(), upscaled.clamp(-1, 1).cpu()


@torch.no_grad()
def measure(
    model: InvertibleRescaler, images: Tensor, device: torch.device, seed: int = 0
) -> tuple[dict[str, float], Tensor]:
    """The metrics of the module docstring on ``images``, and the figure's rows."""
    generator = torch.Generator().manual_seed(_EVAL_SEED + seed)
    lr, upscaled = rescale(model, images, device, generator)
    reference_lr, bicubic = bicubic_baseline(images, model.scale)
    metrics = {
        "psnr_up": psnr(upscaled, images),
        "ssim_up": ssim(upscaled, images),
        "psnr_up_bicubic": psnr(bicubic, images),
        "ssim_up_bicubic": ssim(bicubic, images),
        "psnr_lr": psnr(lr, reference_lr),
        "ssim_lr": ssim(lr, reference_lr),
    }
    x = images.to(device)
    z_d = model.sample_dual(images, generator)
    y, z = model(x, None if z_d is None else z_d.to(device))
    inverted, _ = model.inverse(y, z)
    metrics["max_inverse_error"] = float((inverted - x).abs().max())
    other = model.sample_dual(images, generator)
    if other is not None:
        y_other, _ = model(x, other.to(device))
        metrics["lr_spread"] = float((y_other - y).abs().mean())
    return metrics, _figure_rows(images, reference_lr, lr, bicubic, upscaled)


def bicubic_baseline(images: Tensor, scale: int) -> tuple[Tensor, Tensor]:
    """``(LR, upscaled)`` of the baseline: 8-bit bicubic downscaling, then bicubic upscaling."""
    reference_lr = quantize(bicubic_down(images, scale)).clamp(-1, 1)
    return reference_lr, bicubic_up(reference_lr, scale).clamp(-1, 1)


def _figure_rows(
    x: Tensor, reference_lr: Tensor, lr: Tensor, bicubic: Tensor, upscaled: Tensor
) -> Tensor:
    """The first images of each kind, low-resolution ones enlarged (nearest), row by row."""
    shown = min(_SHOWN, len(x))

    def big(small: Tensor) -> Tensor:
        return F.interpolate(small[:shown], size=x.shape[-2:], mode="nearest")

    return torch.cat([x[:shown], big(reference_lr), big(lr), bicubic[:shown], upscaled[:shown]])


def _save_figure(ctx: RunContext, rows: Tensor) -> None:
    caption = "rows: reference, bicubic LR, our LR (both shown enlarged), bicubic up, our upscaled"
    save_image_grid(ctx.report.add_figure("rescaling.png", caption), rows, rows.shape[0] // 5, 2)


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
    _save_figure(ctx, figure)
