"""Normalization layers chosen by name (``norm=power``), for any network.

A network that can swap its normalization takes ``norm: str | None``: ``None`` keeps the
network's own layer, a name builds the registered ``norm`` component (flow-norms registers
``layer``, ``rms``, ``power`` and ``batch``); an unknown name, or one whose package is not
installed, fails with a message naming the package to install.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from flow_core.options import construct
from flow_core.registry import active_registry

__all__ = ["make_norm"]


def make_norm(
    norm: str | None, num_features: int, default: Callable[[int], nn.Module], **options: Any
) -> nn.Module:
    """``default(num_features)`` when ``norm`` is ``None``, else the registered norm ``norm``
    over the last dimension, given the ``options`` it takes (``affine=False`` ...)."""
    if norm is None:
        return default(num_features)
    cls = active_registry().load("norm", norm)
    module: nn.Module = construct(cls, {"num_features": num_features, **options}, {})
    return module
