"""The container every image loader returns."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from flow_core.errors import FlowError

__all__ = ["ImageData"]


@dataclass(frozen=True)
class ImageData:
    """A split of an image dataset, in the project's layout.

    Attributes:
        images: ``(N, C, H, W)`` float32 in [−1, 1].
        labels: ``(N,)`` long class labels in ``[0, num_classes)``, or ``None`` when the data
            is unconditional.
        num_classes: number of classes (0 if unconditional).
        name: dataset name (``digits``, ``patches``, ``folder``).
        class_names: one name per class (empty if unconditional).
        sources: ``(N,)`` long index of the image each sample was cut from, into
            ``source_names`` (the patch dataset sets it; the generation task is unconditional,
            so these are *not* class labels), else ``None``.
        source_names: names of the source images (empty when ``sources`` is ``None``).
    """

    images: Tensor
    labels: Tensor | None
    num_classes: int
    name: str
    class_names: tuple[str, ...]
    sources: Tensor | None = None
    source_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.images.ndim != 4:
            raise FlowError(
                f"ImageData: images must be (N, C, H, W), got {tuple(self.images.shape)}"
            )
        n = self.images.shape[0]
        if (self.labels is None) != (self.num_classes == 0):
            raise FlowError("ImageData: labels must be given exactly when num_classes > 0")
        if len(self.class_names) != self.num_classes:
            raise FlowError(
                f"ImageData: {len(self.class_names)} class names for {self.num_classes} classes"
            )
        for field, value in (("labels", self.labels), ("sources", self.sources)):
            if value is not None and tuple(value.shape) != (n,):
                raise FlowError(
                    f"ImageData: {field} must have shape ({n},), got {tuple(value.shape)}"
                )

    def __len__(self) -> int:
        return int(self.images.shape[0])
