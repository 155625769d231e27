"""The degradations of the restoration task: Gaussian noise, masked holes, 2× down-sampling.

Each :class:`Degradation` maps clean images x ``(N, C, H, W)`` in [−1, 1] to

- ``degraded``: the observation as an image of x's shape, for figures and for PSNR of the
  input (noisy image; holes filled with grey 0; the 2×2-average image repeated back to H×W);
- ``observation``: what the networks see — ``degraded``, plus for inpainting the mask as one
  more channel (1 = observed), so that a hole is never mistaken for grey pixels.

Masks are either one fixed ``(H, W)`` mask (a user's PNG, :func:`read_mask`) or, by default,
a random square hole per image covering ``hole_fraction`` of its side.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from flow_core.errors import ConfigError, FlowError

__all__ = ["DEGRADATIONS", "Degradation", "read_mask"]

DEGRADATIONS = ("denoise", "inpaint", "sr2x")


def read_mask(path: str, size: int) -> Tensor:
    """A ``(size, size)`` 0/1 mask from a PNG/JPEG file: pixels brighter than half are observed.

    Raises:
        ConfigError: the file is missing or unreadable, its size differs from the images', or
            it observes no pixel at all.
    """
    file = Path(path).expanduser()
    try:
        with Image.open(file) as image:
            grey = np.asarray(image.convert("L"), dtype=np.float32)
    except (FileNotFoundError, UnidentifiedImageError, OSError) as error:
        raise ConfigError(f"mask {str(file)!r} cannot be read as an image: {error}") from error
    if grey.shape != (size, size):
        raise ConfigError(
            f"mask {str(file)!r} is {grey.shape[1]}x{grey.shape[0]} pixels but the images are"
            f" {size}x{size}; give a mask of the images' size (white = observed, black = hole)"
        )
    mask = torch.from_numpy((grey > 127.5).astype(np.float32))
    if mask.sum() == 0:
        raise ConfigError(f"mask {str(file)!r} is black everywhere: no pixel is observed")
    return mask


class Degradation:
    """One degradation ``kind`` of :data:`DEGRADATIONS` with its parameters.

    Args:
        kind: ``denoise`` (y = x + σ·ε), ``inpaint`` (y = m⊙x) or ``sr2x`` (2×2 average, then
            nearest-neighbour back to the full size).
        channels, size: the images' channels C and side S (checked on every call).
        noise_std: σ of ``denoise``.
        mask: a fixed ``(S, S)`` mask for ``inpaint`` (1 = observed); ``None``: random holes.
        hole_fraction: side of the random square hole as a fraction of S.
    """

    def __init__(
        self,
        kind: str,
        channels: int,
        size: int,
        noise_std: float = 0.5,
        mask: Tensor | None = None,
        hole_fraction: float = 0.5,
    ) -> None:
        if kind not in DEGRADATIONS:
            raise ConfigError(f"unknown degradation {kind!r}; accepted: {', '.join(DEGRADATIONS)}")
        if kind == "sr2x" and size % 2:
            raise ConfigError(f"degradation sr2x needs an even image size, got {size}")
        if not noise_std > 0:
            raise ConfigError(f"noise_std must be > 0, got {noise_std}")
        if not 0.0 < hole_fraction < 1.0:
            raise ConfigError(f"hole_fraction must lie in (0, 1), got {hole_fraction}")
        if mask is not None and tuple(mask.shape) != (size, size):
            raise ConfigError(
                f"the mask is {tuple(mask.shape)} but the images are {size}x{size}; they must match"
            )
        self.kind = kind
        self.channels = channels
        self.size = size
        self.noise_std = float(noise_std)
        self.mask = mask
        self.hole = max(1, round(hole_fraction * size))

    @property
    def observation_channels(self) -> int:
        """Channels of :meth:`__call__`'s observation: C, plus the mask for inpainting."""
        return self.channels + (self.kind == "inpaint")

    def __call__(self, x: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """``(degraded, observation)`` of clean images ``x``; randomness from ``generator``.

        Raises:
            FlowError: ``x`` is not ``(N, C, S, S)`` with this degradation's C and S.
        """
        expected = (self.channels, self.size, self.size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise FlowError(
                f"degradation {self.kind}: images must be (N, {', '.join(map(str, expected))}),"
                f" got {tuple(x.shape)}"
            )
        if self.kind == "denoise":
            noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
            degraded = x + self.noise_std * noise
            return degraded, degraded
        if self.kind == "sr2x":
            degraded = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2.0, mode="nearest")
            return degraded, degraded
        mask = self._masks(x.shape[0], generator).to(device=x.device, dtype=x.dtype)
        degraded = x * mask
        return degraded, torch.cat([degraded, mask], dim=1)

    def _masks(self, count: int, generator: torch.Generator) -> Tensor:
        if self.mask is not None:
            return self.mask.expand(count, 1, self.size, self.size)
        corners = torch.randint(0, self.size - self.hole + 1, (count, 2), generator=generator)
        rows = torch.arange(self.size)
        inside_y = (rows >= corners[:, :1]) & (rows < corners[:, :1] + self.hole)
        inside_x = (rows >= corners[:, 1:]) & (rows < corners[:, 1:] + self.hole)
        hole = inside_y[:, :, None] & inside_x[:, None, :]
        return (~hole).float()[:, None]
