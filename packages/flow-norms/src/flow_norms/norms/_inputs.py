"""Input handling shared by the norm layers: channels-last input and an optional padding mask.

Every norm component takes ``x`` of shape ``(..., num_features)`` (usually ``(batch, seq,
features)``) and an optional boolean ``padding_mask`` of shape ``x.shape[:-1]`` that is
``True`` at padded positions (the fairseq / ``key_padding_mask`` convention). Padded positions
are left out of every batch statistic.
"""

from __future__ import annotations

import torch

from flow_core.errors import ConfigError, FlowError

__all__ = ["NormInputError", "check_positive", "flatten"]


class NormInputError(FlowError, ValueError):
    """A norm layer got an input or padding mask of the wrong shape or type."""


def check_positive(name: str, value: float) -> None:
    """Raise :class:`ConfigError` unless ``value`` > 0."""
    if not value > 0:
        raise ConfigError(f"{name} must be > 0, got {value!r}")


def flatten(
    x: torch.Tensor, num_features: int, padding_mask: torch.Tensor | None, layer: str
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Return ``x`` as ``(N, num_features)`` and the ``(N,)`` mask of *valid* rows (or None)."""
    if x.ndim < 2 or x.shape[-1] != num_features:
        raise NormInputError(
            f"{layer} expects input of shape (..., {num_features}) with channels last,"
            f" got {tuple(x.shape)}"
        )
    flat = x.reshape(-1, num_features)
    if padding_mask is None:
        return flat, None
    if padding_mask.dtype != torch.bool or padding_mask.shape != x.shape[:-1]:
        raise NormInputError(
            f"{layer}: padding_mask must be a bool tensor of shape {tuple(x.shape[:-1])}"
            f" (True at padded positions), got {padding_mask.dtype} {tuple(padding_mask.shape)}"
        )
    return flat, ~padding_mask.reshape(-1)
