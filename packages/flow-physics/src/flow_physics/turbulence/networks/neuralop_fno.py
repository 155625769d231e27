"""The FNO of the neuraloperator package (Kossaifi et al. 2024, arXiv:2412.10354; FNO: Li et al.
2021, arXiv:2010.08895), wrapped to the plugin's ``net(u)`` interface as the anchor
implementation of the benchmark. neuraloperator is optional: install it with
``pip install --no-deps neuraloperator==2.0.0 tensorly tensorly-torch opt-einsum requests`` so
that it does not replace the installed torch.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from flow_core.errors import ConfigError

__all__ = ["NeuralopFNO"]


class NeuralopFNO(nn.Module):
    """``neuralop.models.FNO`` with ``modes`` per axis, ``width`` hidden channels, ``depth``
    layers; its own normalisation only (``norm`` must be ``None``)."""

    def __init__(
        self,
        channels: int = 2,
        dimension: int = 2,
        width: int = 8,
        depth: int = 4,
        modes: int = 6,
        norm: str | None = None,
    ) -> None:
        super().__init__()
        if norm is not None:
            raise ConfigError(f"model 'neuralop-fno' takes no norm=, got {norm!r}; leave it unset")
        try:
            from neuralop.models import FNO
        except ImportError as error:
            raise ConfigError(
                "model 'neuralop-fno' needs neuraloperator: pip install --no-deps"
                " neuraloperator==2.0.0 tensorly tensorly-torch opt-einsum requests"
                f" ({error})"
            ) from error
        self.net = FNO(
            n_modes=(2 * modes,) * dimension,
            in_channels=channels,
            out_channels=channels,
            hidden_channels=width,
            n_layers=depth,
        )

    def state_dict(self, *args: Any, **kwargs: Any) -> Any:
        """The tensors only: neuraloperator adds a ``_metadata`` dict that checkpoints refuse."""
        state = super().state_dict(*args, **kwargs)
        for key in [k for k, v in state.items() if not isinstance(v, torch.Tensor)]:
            del state[key]
        return state

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(u)
        return out
