"""Sample quality of an image generator, measured in a shipped feature network's space.

:class:`ImageEvaluator` embeds held-out reference images once with a frozen
:class:`~flow_images.features.net.FeatureNet` φ and scores a batch of samples by

* ``fd``: the Fréchet distance between φ(samples) and φ(reference) (Heusel et al. 2017);
* ``precision``/``recall``: k-NN manifold precision and recall, k = 3 (Kynkäänniemi et al.
  2019);
* ``accuracy`` (class-conditional samples): the fraction of samples that φ's classifier
  assigns to the class they were generated for.

``floor`` is the FD between a fixed-seed subset of the *training* images and the reference:
what a model that reproduced the training distribution exactly would score, up to sampling
noise. FD is biased upward for small sets (on the digits, 360 training images score 0.3 to
1.0 against the test split, 1,000 score about 0.2), so give ``floor_size`` = the number of
samples you will score; the floor is then measured at the same set sizes as the samples.
"""

from __future__ import annotations

import torch
from torch import Tensor

from flow_core.errors import FlowError
from flow_images.features.net import FeatureNet
from flow_images.metrics._checks import check_images
from flow_images.metrics.frechet import frechet_distance
from flow_images.metrics.precision_recall import precision_recall

__all__ = ["FLOOR_SEED", "PR_NEIGHBOURS", "ImageEvaluator"]

FLOOR_SEED = 0
PR_NEIGHBOURS = 3


class ImageEvaluator:
    """Scores image samples against held-out ``reference`` images with ``feature_net``.

    Args:
        feature_net: the frozen feature network (:func:`flow_images.features.load_feature_net`).
        reference: held-out test images ``(N, C, H, W)`` in [−1, 1], C = the network's channels.
        train: training images of the same shape, for :attr:`floor`; optional.
        floor_size: training images in the floor (default: as many as ``reference``; at most
            ``len(train)``). Set it to the number of samples that will be scored.
        batch_size: images per forward pass of the feature network.
    """

    def __init__(
        self,
        feature_net: FeatureNet,
        reference: Tensor,
        train: Tensor | None = None,
        batch_size: int = 512,
        floor_size: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise FlowError(f"ImageEvaluator: batch_size must be >= 1, got {batch_size}")
        if floor_size is not None and floor_size < 2:
            raise FlowError(f"ImageEvaluator: floor_size must be >= 2, got {floor_size}")
        self.net = feature_net
        self.batch_size = batch_size
        check_images("ImageEvaluator reference", reference)
        if reference.shape[1] != feature_net.in_channels:
            raise FlowError(
                f"ImageEvaluator: the feature network takes {feature_net.in_channels} channel(s), "
                f"reference images have {reference.shape[1]}"
            )
        if len(reference) <= PR_NEIGHBOURS:
            raise FlowError(f"ImageEvaluator: reference needs more than {PR_NEIGHBOURS} images")
        self.image_shape: tuple[int, ...] = tuple(reference.shape[1:])
        self.reference_features = self.features(reference)
        self.floor: float | None = None
        if train is not None:
            check_images("ImageEvaluator train", train, self.image_shape)
            generator = torch.Generator().manual_seed(FLOOR_SEED)
            size = len(reference) if floor_size is None else floor_size
            subset = torch.randperm(len(train), generator=generator)[:size]
            self.floor = frechet_distance(self.features(train[subset]), self.reference_features)

    @torch.no_grad()
    def features(self, images: Tensor) -> Tensor:
        """φ(images) ``(N, D)``, computed in eval mode in batches on the network's device."""
        self.net.eval()
        device = next(self.net.parameters()).device
        return torch.cat(
            [
                self.net.features(images[i : i + self.batch_size].to(device)).cpu()
                for i in range(0, len(images), self.batch_size)
            ]
        )

    def evaluate(self, samples: Tensor, labels: Tensor | None = None) -> dict[str, float]:
        """``fd``, ``precision``, ``recall`` and, with ``labels`` (N,), ``accuracy``."""
        check_images("ImageEvaluator samples", samples, self.image_shape)
        if len(samples) <= PR_NEIGHBOURS:
            raise FlowError(f"ImageEvaluator: needs more than {PR_NEIGHBOURS} samples")
        features = self.features(samples)
        precision, recall = precision_recall(self.reference_features, features, k=PR_NEIGHBOURS)
        result = {
            "fd": frechet_distance(features, self.reference_features),
            "precision": precision,
            "recall": recall,
        }
        if labels is not None:
            result["accuracy"] = self._accuracy(features, labels, len(samples))
        return result

    @torch.no_grad()
    def _accuracy(self, features: Tensor, labels: Tensor, count: int) -> float:
        classes = self.net.num_classes
        if labels.shape != (count,) or labels.dtype != torch.long:
            raise FlowError(
                f"ImageEvaluator: labels must be a LongTensor of shape ({count},), "
                f"got {labels.dtype} {tuple(labels.shape)}"
            )
        if labels.min() < 0 or labels.max() >= classes:
            raise FlowError(f"ImageEvaluator: labels must lie in [0, {classes}), the net's classes")
        head = self.net.head
        logits = head(features.to(head.weight.device)).cpu()
        return float((logits.argmax(1) == labels.cpu()).double().mean())
