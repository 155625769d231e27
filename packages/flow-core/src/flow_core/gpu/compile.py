"""``torch.compile`` behind a flag."""

from __future__ import annotations

from typing import Any, TypeVar, cast

import torch
from torch import nn

__all__ = ["maybe_compile"]

M = TypeVar("M", bound=nn.Module)


def maybe_compile(module: M, enabled: bool, **kwargs: Any) -> M:
    """Return ``torch.compile(module, **kwargs)`` if ``enabled``, else ``module`` itself.

    The compiled wrapper forwards attribute access to ``module``, so it is typed as ``M``;
    :func:`flow_core.gpu.unwrap` recovers the original module (for checkpoints and EMA).
    """
    if not enabled:
        return module
    return cast(M, torch.compile(module, **kwargs))
