"""``images.digits``: class-conditional generation of scikit-learn's 8×8 handwritten digits.

The data are the 1,797 digits that ship with scikit-learn (10 classes, 16 grey levels,
scaled to [−1, 1]), split once into fixed train and test sets; 20% of the training digits are
held out as a validation part. By default a small U-Net is trained on the rest with
conditional flow matching (10% of labels dropped to the null label), its classifier-free
guidance weight and sampler are chosen on the validation digits (:mod:`flow_images.choice`),
and the choice is measured against the held-out test digits: Fréchet distance and class
accuracy in the shipped digit classifier's feature space, precision and recall, a sample grid
(one class per column) and the quality-against-NFE curves. See
:mod:`flow_images.tasks.generation` for the stages every objective and sampler selects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from flow_images.data import ImageData, load_dataset
from flow_images.tasks.generation import GenerationConfig, ImageGeneration

__all__ = ["Digits", "DigitsConfig"]


@dataclass(frozen=True)
class DigitsConfig(GenerationConfig):
    """Configuration of ``images.digits`` (defaults train in a few minutes on one CPU core)."""

    guidance_weight: float = 1.0
    guidance_sweep: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0)


class Digits(ImageGeneration):
    """Class-conditional digits; see the module docstring."""

    Config: ClassVar[type[DigitsConfig]] = DigitsConfig
    feature_net = "digits"

    def datasets(self, config: DigitsConfig) -> tuple[ImageData, ImageData]:
        return load_dataset("digits", "train"), load_dataset("digits", "test")
