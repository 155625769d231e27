"""``images.patches``: unconditional generation of photo patches, or of a user's images.

By default the data are 32×32 RGB patches cut from the colour photographs bundled with
scikit-image, split by source photograph (no test photograph is seen in training). With
``folder=PATH`` the task trains on a user's folder of PNG/JPEG images instead, resized to
``size`` with ``channels`` channels. Quality is measured against the held-out split in the
shipped patch network's feature space (Fréchet distance, precision, recall); see
:mod:`flow_images.tasks.generation` for the stages every objective and sampler selects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from flow_core.errors import ConfigError
from flow_images.data import ImageData, load_dataset
from flow_images.tasks.generation import GenerationConfig, ImageGeneration

__all__ = ["Patches", "PatchesConfig"]


@dataclass(frozen=True)
class PatchesConfig(GenerationConfig):
    """Configuration of ``images.patches``; ``folder`` switches to a user's images."""

    folder: str | None = None
    size: int = 32
    channels: int = 3
    guidance_weight: float = 0.0
    cond_dropout: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.size < 8 or self.size % 4:
            raise ConfigError(f"size must be a multiple of 4 and >= 8, got {self.size}")
        if self.channels not in (1, 3):
            raise ConfigError(f"channels must be 1 (grey) or 3 (RGB), got {self.channels}")


class Patches(ImageGeneration):
    """Unconditional photo patches (or a user's folder); see the module docstring."""

    Config: ClassVar[type[PatchesConfig]] = PatchesConfig
    feature_net = "patches"

    def datasets(self, config: PatchesConfig) -> tuple[ImageData, ImageData]:
        if config.folder is None:
            return load_dataset("patches", "train"), load_dataset("patches", "test")
        folder, size, channels = config.folder, config.size, config.channels
        train = load_dataset("folder", "train", folder=folder, size=size, channels=channels)
        test = load_dataset("folder", "test", folder=folder, size=size, channels=channels)
        return train, test
