"""The small CNN classifier whose penultimate features the image metrics compare.

Fréchet distances need a fixed feature map φ that reflects what images look like; the FID of
Heusel et al. (2017) takes the 2048-d pool features of an Inception-v3 trained on ImageNet.
That network (and its download) does not fit 8×8 digits or 32×32 patches on a CPU, so each
dataset has its own small classifier, trained once by ``tools/train_feature_nets.py`` and
shipped as safetensors. Architecture: stages of two 3×3 conv–BatchNorm–ReLU layers with 2×2
max-pooling between stages, global average pooling to φ(x) ∈ R^D (D = the last stage's width),
and a linear classifier on φ(x).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from flow_core.errors import ConfigError, FlowError

__all__ = ["FeatureNet"]


def _conv(channels_in: int, channels_out: int) -> list[nn.Module]:
    return [
        nn.Conv2d(channels_in, channels_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(channels_out),
        nn.ReLU(),
    ]


class FeatureNet(nn.Module):
    """CNN classifier: :meth:`features` gives φ(x) ∈ R^D, :meth:`forward` the class logits.

    Args:
        in_channels: image channels (1 or 3).
        num_classes: number of classes of its training objective.
        widths: channels of each stage; D = ``widths[-1]``.
    """

    def __init__(self, in_channels: int, num_classes: int, widths: Sequence[int]) -> None:
        super().__init__()
        if in_channels < 1 or num_classes < 2 or not widths or min(widths) < 1:
            raise ConfigError(
                "FeatureNet: needs in_channels >= 1, num_classes >= 2 and positive widths; got "
                f"{in_channels}, {num_classes}, {tuple(widths)}"
            )
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.widths = tuple(int(w) for w in widths)
        layers: list[nn.Module] = []
        previous = in_channels
        for stage, width in enumerate(self.widths):
            if stage > 0:
                layers.append(nn.MaxPool2d(2))
            layers += _conv(previous, width) + _conv(width, width)
            previous = width
        self.trunk = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(previous, num_classes)

    @property
    def feature_dim(self) -> int:
        """D, the dimension of φ(x)."""
        return self.widths[-1]

    def _check(self, x: Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise FlowError(
                f"FeatureNet: expected images (N, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        if min(x.shape[2:]) < 2 ** (len(self.widths) - 1):
            raise FlowError(
                f"FeatureNet: images of {tuple(x.shape[2:])} pixels are too small for "
                f"{len(self.widths) - 1} pooling steps"
            )

    def features(self, x: Tensor) -> Tensor:
        """φ(x): ``(N, D)`` pooled penultimate features of images ``(N, C, H, W)`` in [−1, 1]."""
        self._check(x)
        out: Tensor = self.trunk(x)
        return out

    def forward(self, x: Tensor) -> Tensor:
        """Class logits ``(N, num_classes)``."""
        logits: Tensor = self.head(self.features(x))
        return logits

    @torch.no_grad()
    def predict(self, x: Tensor, batch_size: int = 512) -> Tensor:
        """Predicted classes ``(N,)`` in batches, without gradients."""
        return torch.cat(
            [self(x[i : i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)]
        )
