"""The small convolutional autoencoder STARFlow's flow lives in (Gu et al. 2025, arXiv
2506.06276, §3.2).

STARFlow models the latents of a pretrained autoencoder instead of pixels, perturbed with
Gaussian noise (σ = 0.3 on SD-VAE latents), and replaces TARFlow's score-based denoising by a
decoder fine-tuned on noisy latents: D is trained so that D(E(x) + σε) ≈ x. Here the
autoencoder is small enough to train on a CPU in the task: each stage halves the resolution,
and the latents are standardised (zero mean, unit standard deviation over the training set)
so that σ has the same meaning as on SD-VAE's scaled latents.

Stage 1 (:class:`ReconstructionObjective`, ``noise = 0``): ‖D(E(x)) − x‖² plus a small
penalty on the latents' size. Stage 2 (``noise = σ``, decoder only): ‖D(E(x) + σε) − x‖².
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch
from torch import Tensor, nn

from flow_core.errors import ConfigError, FlowError
from flow_core.norms import make_norm

__all__ = ["Autoencoder", "ReconstructionObjective"]


def _group_norm(channels: int) -> nn.Module:
    return nn.GroupNorm(min(8, channels), channels)


class Autoencoder(nn.Module):
    """Images ``(B, C, S, S)`` to latents ``(B, latent_channels, S/2^k, S/2^k)`` and back.

    Args:
        in_channels: image channels.
        latent_channels: latent channels.
        hidden: convolution width.
        downsamples: halvings of the resolution k (>= 1).
        norm: a registered norm over channels, else GroupNorm.
    """

    model_kind: ClassVar[str] = "autoencoder"
    mean: Tensor
    std: Tensor

    def __init__(
        self,
        in_channels: int = 1,
        latent_channels: int = 2,
        hidden: int = 32,
        downsamples: int = 1,
        norm: str | None = None,
    ) -> None:
        super().__init__()
        if min(in_channels, latent_channels, hidden, downsamples) < 1:
            raise ConfigError(
                "autoencoder: in_channels, latent_channels, hidden and downsamples must be >= 1"
            )
        self.downsamples = downsamples
        encoder: list[nn.Module] = [nn.Conv2d(in_channels, hidden, 3, padding=1), nn.SiLU()]
        decoder: list[nn.Module] = [nn.Conv2d(latent_channels, hidden, 3, padding=1), nn.SiLU()]
        for _ in range(downsamples):
            encoder += [nn.Conv2d(hidden, hidden, 4, stride=2, padding=1), nn.SiLU()]
            decoder += [nn.ConvTranspose2d(hidden, hidden, 4, stride=2, padding=1), nn.SiLU()]
        encoder += [_Channels(make_norm(norm, hidden, _group_norm))]
        encoder += [nn.Conv2d(hidden, latent_channels, 3, padding=1)]
        decoder += [nn.Conv2d(hidden, hidden, 3, padding=1), nn.SiLU()]
        decoder += [nn.Conv2d(hidden, in_channels, 3, padding=1)]
        self.encoder = nn.Sequential(*encoder)
        self.decoder = nn.Sequential(*decoder)
        self.register_buffer("mean", torch.zeros(latent_channels, 1, 1))
        self.register_buffer("std", torch.ones(latent_channels, 1, 1))

    def encode(self, x: Tensor) -> Tensor:
        """Standardised latents of images ``x``."""
        if x.ndim != 4 or x.shape[-1] % 2**self.downsamples:
            raise FlowError(
                f"autoencoder: images must be (B, C, S, S) with S divisible by "
                f"{2**self.downsamples}, got {tuple(x.shape)}"
            )
        out: Tensor = (self.encoder(x) - self.mean) / self.std
        return out

    def decode(self, latents: Tensor) -> Tensor:
        """Images from standardised latents."""
        out: Tensor = self.decoder(latents * self.std + self.mean)
        return out

    def forward(self, x: Tensor, noise: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(D(E(x) + noise), E(x))``; with ``noise`` the encoder is not trained."""
        latents = self.encode(x)
        if noise is None:
            return self.decode(latents), latents
        return self.decode(latents.detach() + noise), latents

    @torch.no_grad()
    def standardise(self, images: Tensor) -> None:
        """Set the latent mean and standard deviation per channel from ``images``."""
        raw = self.encoder(images)
        self.mean.copy_(raw.mean(dim=(0, 2, 3)).reshape(-1, 1, 1))
        self.std.copy_(raw.std(dim=(0, 2, 3)).reshape(-1, 1, 1).clamp_min(1e-6))


class _Channels(nn.Module):
    """Apply a norm over the last dimension to channels-first maps (NCHW)."""

    def __init__(self, norm: nn.Module) -> None:
        super().__init__()
        self.norm = norm

    def forward(self, x: Tensor) -> Tensor:
        if isinstance(self.norm, nn.GroupNorm):
            out: Tensor = self.norm(x)
            return out
        return self.norm(x.movedim(1, -1)).movedim(-1, 1)  # type: ignore[no-any-return]


class ReconstructionObjective:
    """‖D(E(x) + σε) − x‖² (+ ``latent_penalty``·‖E(x)‖² when σ = 0), per pixel.

    With σ = 0 it trains the autoencoder; with σ > 0 (and only the decoder's parameters
    handed to the optimizer) it fine-tunes the decoder on noisy latents, ε being the batch's
    ``"noise"``.
    """

    model_kind: ClassVar[str] = "autoencoder"

    def __init__(self, noise: float = 0.0, latent_penalty: float = 1e-3) -> None:
        self.noise = noise
        self.latent_penalty = latent_penalty

    def __call__(
        self, model: nn.Module, batch: Mapping[str, Tensor]
    ) -> tuple[Tensor, dict[str, float]]:
        x = batch["x1"]
        noise = self.noise * batch["noise"] if self.noise > 0 else None
        reconstruction, latents = model(x, noise)
        loss = (reconstruction - x).square().mean()
        mse = loss.item()
        if noise is None:
            loss = loss + self.latent_penalty * latents.square().mean()
        return loss, {"loss": loss.item(), "mse": mse}
