"""``images.restore``: PMRF, posterior-mean rectified flow (Ohayon et al. 2025, arXiv 2410.00418).

Restoration of degraded images (``degradation=denoise``, ``inpaint`` with random or a user's
mask, ``sr2x``) on scikit-learn's digits (default), photo patches (``dataset=patches``) or a
user's folder of images (``dataset=folder folder=PATH``). Three estimators are trained on the
train split and measured on the held-out test split:

1. **restorer** — the minimum-MSE estimate f(y) ≈ E[x | y], trained with MSE (stage
   ``restorer``; ``restorer_steps`` steps);
2. **PMRF** — a rectified flow from Z0 = f(y) + σ_s·ξ (``source_noise`` σ_s = 0.1) to x,
   x_t = (1 − t)·Z0 + t·x, target x − Z0 (stage ``flow``, core's ``objective``, default
   ``cfm``), integrated by core's ``sampler`` (default Euler, ``sample_steps`` = 25). It
   approximates the MSE-optimal estimator with a perfect perceptual index: the optimal
   transport from the posterior means to the data;
3. **posterior sampling** — a flow from N(0, I) to x conditioned on y (stage ``posterior``;
   ``posterior=false`` skips it), the photo-realistic baseline PMRF is compared with.

``flow sample RUN`` degrades held-out test images (or those of ``sample_folder=PATH``) and
writes each estimator's restorations.

Reported per estimator: PSNR and SSIM against the clean test images (scikit-image), and the
Fréchet distance (FD) of the restored set to the clean test set in the shipped feature
network's space (perceptual quality; digits and 32×32 RGB images only). The paper's claim:
PMRF's FD is close to posterior sampling's while its PSNR is clearly higher.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor, nn

from flow_core.errors import ConfigError
from flow_core.options import component, option, setting, used_if
from flow_core.training import TrainSettings, train, training
from flow_images.data import ImageData, load_dataset
from flow_images.data.folder import read_folder
from flow_images.pmrf import (
    ConvRestorer,
    Degradation,
    ObservationConditioned,
    RestorerMSE,
    read_mask,
)
from flow_images.pmrf.report import (
    RestorationStages,
    evaluate_restoration,
    restorations,
    save_restorations,
)
from flow_images.pmrf.stages import flow_batches, posterior_batches, restorer_batches

if TYPE_CHECKING:
    from flow_core.runner import RunContext

__all__ = ["Restore", "RestoreConfig"]

_FOLDER = used_if("dataset=folder", lambda c: c.dataset == "folder")
_DENOISE = used_if("degradation=denoise", lambda c: c.degradation == "denoise")
_INPAINT = used_if("degradation=inpaint", lambda c: c.degradation == "inpaint")
_RANDOM_HOLES = used_if(
    "degradation=inpaint without mask", lambda c: c.degradation == "inpaint" and c.mask is None
)
_DATASETS = ("digits", "patches", "folder")


@dataclass(frozen=True)
class RestoreConfig:
    """Configuration of ``images.restore`` (defaults: denoising digits in a few CPU minutes)."""

    degradation: str = "denoise"
    dataset: str = "digits"
    folder: str | None = setting(None, when=_FOLDER)
    size: int = setting(32, when=_FOLDER)
    channels: int = setting(3, when=_FOLDER)
    noise_std: float = setting(0.5, when=_DENOISE)
    mask: str | None = setting(None, when=_INPAINT)
    hole_fraction: float = setting(0.5, when=_RANDOM_HOLES)
    source_noise: float = 0.1
    objective: str = component("objective", "cfm")
    flow: str = component("flow", "unet")
    sampler: str = component("sampler", "euler")
    sample_steps: int = option("sampler", "steps", 25)
    base_channels: int = option("flow", "base_channels", 16)
    restorer_width: int = 32
    restorer_depth: int = 4
    restorer_norm: str | None = None
    restorer_steps: int = 1000
    posterior: bool = True
    eval_samples: int = 360
    sample_folder: str | None = None
    train: TrainSettings = training(
        steps=2000, batch_size=128, lr=2e-3, ema_decay=0.999, log_every=100
    )

    def __post_init__(self) -> None:
        if self.dataset not in _DATASETS:
            raise ConfigError(f"unknown dataset {self.dataset!r}; accepted: {', '.join(_DATASETS)}")
        if self.dataset == "folder" and self.folder is None:
            raise ConfigError("dataset=folder needs folder=<path to a folder of PNG/JPEG images>")
        for name in ("restorer_width", "restorer_depth", "restorer_steps", "eval_samples"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.source_noise >= 0:
            raise ConfigError(f"source_noise must be >= 0, got {self.source_noise}")
        if self.eval_samples < 4:
            raise ConfigError(
                f"eval_samples must be >= 4 (FD needs a covariance), got {self.eval_samples}"
            )


class Restore:
    """PMRF against the restorer alone and posterior sampling; see the module docstring."""

    Config: ClassVar[type[RestoreConfig]] = RestoreConfig

    def run(self, config: RestoreConfig, ctx: RunContext) -> dict[str, float]:
        return evaluate_restoration(ctx, config, _train_stages(config, ctx))

    def evaluate(self, config: RestoreConfig, ctx: RunContext) -> dict[str, float]:
        """``flow eval``: the stages load their checkpoints, then the test split is measured."""
        return self.run(config, ctx)

    def sample(self, config: RestoreConfig, ctx: RunContext, count: int) -> dict[str, Tensor]:
        """``flow sample``: degrade ``count`` clean images like the test split and restore them.

        The images are the first ``count`` held-out test images or, with
        ``sample_folder=PATH``, the first ``count`` images of that folder (read at the run's
        size and channels). Returned (all ``(count, C, S, S)`` in [−1, 1]): ``clean``,
        ``degraded``, ``restorer`` (the MMSE estimate), ``pmrf`` and, if the run trained it,
        ``posterior`` (a posterior sample); ``restorations.png`` shows them.
        """
        stages = _train_stages(config, ctx)
        shape = tuple(stages.train_data.images.shape[1:])
        if config.sample_folder is None:
            pool, where = stages.test_data.images, "the held-out test split"
        else:
            pool = read_folder(config.sample_folder, shape[-1], shape[0])
            where = f"sample_folder {config.sample_folder!r}"
        if count > len(pool):
            raise ConfigError(f"--count {count}: {where} holds only {len(pool)} image(s)")
        clean = pool[:count]
        images = restorations(ctx, config, stages, clean)
        save_restorations(ctx, images, clean)
        ctx.report.add_text(
            f"{count} images of {where}, degraded by **{config.degradation}** and restored"
            f" ({stages.sampler.nfe} NFE per PMRF or posterior sample)."
        )
        names = {"restorer": "restorer", "PMRF": "pmrf", "posterior sampling": "posterior"}
        restored = {names[name]: tensor for name, tensor in images.items() if name in names}
        return {"clean": clean, "degraded": images["degraded"], **restored}


def _train_stages(config: RestoreConfig, ctx: RunContext) -> RestorationStages:
    """Train the restorer, PMRF's flow and the posterior-sampling flow (module docstring)."""
    train_data, test_data = _datasets(config)
    degrade = _degradation(config, train_data)
    channels = train_data.images.shape[1]
    objective = ctx.component("objective")
    if objective.model_kind != "velocity":
        raise ConfigError(
            f"images.restore trains a velocity field; objective {config.objective!r} trains"
            f" a {objective.model_kind} model (use e.g. objective=cfm)"
        )
    sampler = ctx.component("sampler")
    size = config.train.batch_size
    restorer = ConvRestorer(
        degrade.observation_channels,
        channels,
        config.restorer_width,
        config.restorer_depth,
        config.restorer_norm,
    )
    stage1 = dataclasses.replace(config.train, steps=config.restorer_steps)
    torch.manual_seed(ctx.seed)
    batches = restorer_batches(train_data.images, degrade, size)
    mmse = train(ctx, restorer, RestorerMSE(), batches, stage1, stage="restorer").eval_model
    torch.manual_seed(ctx.seed + 1)
    flow = _network(ctx, train_data, channels)
    batches = flow_batches(train_data.images, degrade, size, mmse, config.source_noise)
    flow = train(ctx, flow, objective, batches, config.train, stage="flow").eval_model
    posterior: nn.Module | None = None
    if config.posterior:
        torch.manual_seed(ctx.seed + 2)
        inner = _network(ctx, train_data, channels + degrade.observation_channels)
        batches = posterior_batches(train_data.images, degrade, size)
        conditioned = ObservationConditioned(inner, channels)
        posterior = train(
            ctx, conditioned, objective, batches, config.train, stage="posterior"
        ).eval_model
    return RestorationStages(train_data, test_data, degrade, sampler, mmse, flow, posterior)


def _datasets(config: RestoreConfig) -> tuple[ImageData, ImageData]:
    if config.dataset != "folder":
        return load_dataset(config.dataset, "train"), load_dataset(config.dataset, "test")
    options: dict[str, Any] = {
        "folder": config.folder,
        "size": config.size,
        "channels": config.channels,
    }
    return load_dataset("folder", "train", **options), load_dataset("folder", "test", **options)


def _degradation(config: RestoreConfig, data: ImageData) -> Degradation:
    channels, height, width = data.images.shape[1:]
    if height != width:
        raise ConfigError(f"images.restore needs square images, got {height}x{width}")
    mask = None if config.mask is None else read_mask(config.mask, height)
    return Degradation(
        config.degradation, channels, height, config.noise_std, mask, config.hole_fraction
    )


def _network(ctx: RunContext, data: ImageData, in_channels: int) -> nn.Module:
    """The chosen velocity network for ``in_channels`` input channels at the data's size."""
    size = data.images.shape[-1]
    network: nn.Module = ctx.component(
        "flow", in_channels=in_channels, image_size=size, dim=in_channels * size * size
    )
    return network
