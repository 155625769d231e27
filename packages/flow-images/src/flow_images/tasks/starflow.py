"""``images.starflow``: STARFlow (Gu et al. 2025, arXiv 2506.06276) on digits or photo patches.

Three stages, each through core's training loop and checkpointed on its own:

1. ``autoencoder``: a small convolutional autoencoder (:mod:`flow_images.starflow.autoencoder`)
   learns to reconstruct the training images; its latents are standardised;
2. ``decoder``: its decoder is fine-tuned on latents with Gaussian noise of σ = ``noise_std``,
   D(E(x) + σε) ≈ x — STARFlow's replacement for TARFlow's score-based denoising step;
3. the flow: a deep-shallow stack (:class:`~flow_images.starflow.model.STARFlow`, labels only
   in the deep block) trained by maximum likelihood on the noisy latents E(x) + σε.

Samples are decoded by the fine-tuned decoder and guided by STARFlow's Gaussian rule
(``guidance_rule=linear`` for TARFlow's). ``test_bits_per_dim`` is measured in latent space
(per latent dimension), so it does not compare with pixel-space runs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, cast

import torch
from torch import Tensor

from flow_core.errors import ConfigError
from flow_core.options import component, option, setting, used_if
from flow_core.training import train
from flow_images.data import ImageData
from flow_images.starflow.autoencoder import Autoencoder, ReconstructionObjective
from flow_images.tasks.normalizing import FlowSpace, NormalizingFlowConfig, NormalizingFlowTask

if TYPE_CHECKING:
    from flow_core.runner import RunContext

__all__ = ["STARFlowConfig", "STARFlowTask"]

DOWNSAMPLES = {"digits": 1, "patches": 2}
"""Resolution halvings of the autoencoder per dataset (8×8 → 4×4, 32×32 → 8×8)."""


@dataclass(frozen=True)
class STARFlowConfig(NormalizingFlowConfig):
    """Configuration of ``images.starflow`` (defaults train in a few minutes on one CPU core).

    ``latent_channels`` sizes the autoencoder's latents, ``autoencoder_steps`` and
    ``decoder_steps`` its two stages (same optimizer settings as the flow's section).
    """

    flow: str = component("flow", "starflow")
    patch_size: int = option("flow", "patch_size", 1)
    deep_depth: int = option("flow", "deep_depth", 3)
    shallow_depth: int = option("flow", "shallow_depth", 1)
    blocks: int = option("flow", "blocks", 4)
    noise_std: float = 0.3
    denoise: bool = setting(
        False, when=used_if("never: the fine-tuned decoder denoises STARFlow", lambda _: False)
    )
    guidance_rule: str = "gaussian"
    latent_channels: int = 2
    autoencoder_steps: int = 1000
    decoder_steps: int = 500

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.noise != "gaussian":
            raise ConfigError("images.starflow models noisy latents: noise must be 'gaussian'")
        for name in ("latent_channels", "autoencoder_steps", "decoder_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")


class STARFlowTask(NormalizingFlowTask):
    """STARFlow on images; see the module docstring."""

    Config: ClassVar[type[STARFlowConfig]] = STARFlowConfig

    def space(self, config: NormalizingFlowConfig, ctx: RunContext, data: ImageData) -> FlowSpace:
        """The latent space of the autoencoder trained (or restored) here."""
        assert isinstance(config, STARFlowConfig)
        autoencoder = self.autoencoder(config, ctx, data)

        def decode(latents: Tensor, labels: Tensor | None) -> Tensor:
            with torch.no_grad():
                return autoencoder.decode(latents.to(ctx.device))

        def encode(images: Tensor) -> Tensor:
            with torch.no_grad():
                return autoencoder.encode(images.to(ctx.device))

        with torch.no_grad():
            shape = tuple(encode(data.images[:1]).shape[1:])
        return FlowSpace(encode, decode, shape, "latent")

    def autoencoder(self, config: STARFlowConfig, ctx: RunContext, data: ImageData) -> Autoencoder:
        """Stages ``autoencoder`` and ``decoder``: train, standardise, fine-tune on noise."""
        images = data.images
        model = Autoencoder(
            images.shape[1], config.latent_channels, downsamples=DOWNSAMPLES[config.dataset]
        )
        batch_size = config.train.batch_size

        def batches(generator: torch.Generator) -> dict[str, Tensor]:
            index = torch.randint(0, images.shape[0], (batch_size,), generator=generator)
            x = images[index]
            latent_shape = (batch_size, config.latent_channels, *_latent_side(x, model))
            return {"x1": x, "noise": torch.randn(latent_shape, generator=generator)}

        first = dataclasses.replace(config.train, steps=config.autoencoder_steps)
        result = train(ctx, model, ReconstructionObjective(), batches, first, stage="autoencoder")
        model = cast(Autoencoder, result.model)
        model.standardise(images.to(next(model.parameters()).device))
        second = dataclasses.replace(config.train, steps=config.decoder_steps)
        result = train(
            ctx,
            model,
            ReconstructionObjective(config.noise_std),
            batches,
            second,
            stage="decoder",
            parameters=model.decoder.parameters(),
        )
        decoder_model = cast(Autoencoder, result.eval_model.to(ctx.device).eval())
        return decoder_model


def _latent_side(x: Tensor, model: Autoencoder) -> tuple[int, int]:
    side = x.shape[-1] // 2**model.downsamples
    return side, side
