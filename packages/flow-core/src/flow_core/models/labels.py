"""Class labels for conditional networks, with the null label of classifier-free guidance.

A network with ``num_classes = C > 0`` takes integer labels in {0, …, C}, where C is the null
label ∅ (no condition) that classifier-free guidance trains on and samples with (Ho &
Salimans 2022); ``cond=None`` means ∅ for every sample. Every conditional network in flow and
its plugins checks its labels with :func:`class_labels`, so they all accept and refuse the
same inputs with the same messages.
"""

from __future__ import annotations

import torch
from torch import Tensor

from flow_core.errors import FlowError

__all__ = ["class_labels", "is_label_tensor"]


def is_label_tensor(cond: Tensor) -> bool:
    """Whether ``cond`` holds integer class labels (not floating, complex or boolean)."""
    return not (cond.dtype.is_floating_point or cond.is_complex() or cond.dtype == torch.bool)


def class_labels(
    where: str, cond: Tensor | None, num_classes: int, batch: int, device: torch.device
) -> Tensor | None:
    """``cond`` as ``(batch,)`` long labels, ``None`` → the null label; ``None`` if unconditional.

    The range check reads the labels' values, which would split a ``torch.compile`` graph
    (and synchronise with a GPU); it is skipped while compiling, so a compiled caller checks
    its labels once, eagerly, beforehand.

    Raises:
        FlowError: ``cond`` is given to an unconditional network (``num_classes = 0``), is not
            an integer tensor of shape ``(batch,)``, or holds a label outside
            ``[0, num_classes]``.
    """
    if num_classes == 0:
        if cond is not None:
            raise FlowError(
                f"{where}: cond was given but the model is unconditional (num_classes=0)"
            )
        return None
    if cond is None:
        return torch.full((batch,), num_classes, dtype=torch.long, device=device)
    if cond.shape != (batch,) or not is_label_tensor(cond):
        raise FlowError(
            f"{where}: cond must be integer labels of shape ({batch},), "
            f"got {cond.dtype} of shape {tuple(cond.shape)}"
        )
    if not torch.compiler.is_compiling() and bool(((cond < 0) | (cond > num_classes)).any()):
        raise FlowError(
            f"{where}: labels must lie in [0, {num_classes}] ({num_classes} is the null label)"
        )
    return cond.long()
