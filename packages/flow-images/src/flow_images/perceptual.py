"""A perceptual distance in the shipped feature network's space, for the 2-RF++ loss.

2-RF++ (Lee et al. 2024) adds LPIPS(x̂1, x1) between the one-step data prediction
x̂1 = x_t + (1 − t)·v(x_t, t) and the pair's endpoint x1. LPIPS needs pretrained weights that
cannot be downloaded here, so this substitute measures the squared distance of the two images'
features in the frozen feature network that ships with flow-images (the one the metrics use),
normalised per feature dimension: P(x̂1, x1) = λ · ‖f(x̂1) − f(x1)‖² / D. It is named as a
substitute wherever its results appear.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor

if TYPE_CHECKING:
    from flow_images.features import FeatureNet

__all__ = ["FeaturePerceptual"]


class FeaturePerceptual:
    """``P(x̂1, x1) = weight · mean_d (f_d(x̂1) − f_d(x1))²`` per sample, ``f`` frozen.

    Args:
        network: a module with ``features(x) -> (B, D)``; its parameters are frozen here.
        weight: λ, the perceptual term's weight in the loss.
    """

    def __init__(self, network: FeatureNet, weight: float = 1.0) -> None:
        self.network = network.eval().requires_grad_(False)
        self.weight = float(weight)

    def __call__(self, prediction: Tensor, target: Tensor) -> Tensor:
        self.network.to(prediction.device)
        difference = self.network.features(prediction) - self.network.features(target).detach()
        distance: Tensor = self.weight * difference.square().mean(dim=1)
        return distance
