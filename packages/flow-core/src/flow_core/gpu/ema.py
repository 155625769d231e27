"""Exponential moving average of a model's weights, for evaluation and sampling.

A thin wrapper over :class:`torch.optim.swa_utils.AveragedModel` with
:func:`~torch.optim.swa_utils.get_ema_multi_avg_fn`, averaging buffers as well as parameters::

    ema_1 = theta_1,    ema_k = decay * ema_{k-1} + (1 - decay) * theta_k,

where ``theta_k`` are the model's weights at the k-th :meth:`EMA.update` (the first update copies).
Integer buffers (e.g. BatchNorm's ``num_batches_tracked``) are averaged too and then truncated,
as torch does.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from flow_core.errors import CheckpointError, UsageError
from flow_core.gpu.distributed import unwrap

__all__ = ["EMA"]


class EMA:
    """EMA of ``model``'s parameters and buffers, kept on ``model``'s device.

    ``model`` may be wrapped in DDP or ``torch.compile``; the plain module underneath is averaged.
    Call :meth:`update` after each optimiser step and evaluate with :attr:`module`.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise UsageError(f"EMA decay must lie strictly between 0 and 1, got {decay!r}")
        self.decay = decay
        average = get_ema_multi_avg_fn(decay)  # type: ignore[no-untyped-call]
        self._averaged = AveragedModel(unwrap(model), multi_avg_fn=average, use_buffers=True)

    @property
    def module(self) -> nn.Module:
        """The averaged copy of the model (call ``.eval()`` on it before evaluating)."""
        return self._averaged.module

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold ``model``'s current weights into the average."""
        self._averaged.update_parameters(unwrap(model))

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Averaged weights (keys ``module.*``) and the update count ``n_averaged``, all tensors."""
        return dict(self._averaged.state_dict())

    def load_state_dict(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`state_dict` returned; a mismatch raises :class:`CheckpointError`."""
        try:
            self._averaged.load_state_dict(state_dict)
        except RuntimeError as err:
            cause = str(err).replace("\n", " ")
            raise CheckpointError(f"EMA state does not match the model: {cause}") from err
