"""Per-sample regression losses on a residual Δ = prediction − target.

Each function maps Δ of shape ``(B, ...)`` to a loss of shape ``(B,)``, so that objectives can
weight samples (by time, by a coupling weight, adaptively) before averaging.

``squared_error``
    the mean of Δ² over a sample's d elements, ‖Δ‖²/d; its batch mean is the usual MSE.
``pseudo_huber``
    H(Δ) = (√(‖Δ‖² + c²) − c)/d with c = 0.00054·d by default: the loss of 2-RF++
    (Lee et al. 2024, "Improving the training of rectified flows"; the constant follows the
    reference code, which scales c with the dimension d itself). It behaves like ‖Δ‖²/(2cd)
    for ‖Δ‖ ≪ c and like ‖Δ‖/d for ‖Δ‖ ≫ c, so outlying pairs pull less than under L2.
"""

from __future__ import annotations

from torch import Tensor

from flow_core.errors import ConfigError, FlowError

__all__ = ["LOSSES", "check_loss", "per_sample_loss", "pseudo_huber", "squared_error"]

LOSSES: tuple[str, ...] = ("squared", "pseudo-huber")
"""The loss names objectives accept (their ``loss`` option)."""

HUBER_C_PER_DIM = 0.00054
"""2-RF++'s default pseudo-Huber constant per data dimension: c = 0.00054·d."""


def _flat(delta: Tensor) -> Tensor:
    if delta.ndim < 1:
        raise FlowError(f"a residual needs a batch dimension, got shape {tuple(delta.shape)}")
    return delta.reshape(delta.shape[0], -1)


def squared_error(delta: Tensor) -> Tensor:
    """‖Δ‖²/d per sample, shape ``(B,)``."""
    return _flat(delta).square().mean(dim=1)


def pseudo_huber(delta: Tensor, c: float | None = None) -> Tensor:
    """The pseudo-Huber loss (√(‖Δ‖² + c²) − c)/d per sample, shape ``(B,)``.

    Args:
        delta: residuals of shape ``(B, ...)`` with d elements per sample.
        c: the transition scale; ``None`` uses 2-RF++'s c = 0.00054·d.
    """
    flat = _flat(delta)
    d = flat.shape[1]
    scale = HUBER_C_PER_DIM * d if c is None else float(c)
    if not scale > 0:
        raise ConfigError(f"pseudo_huber: c must be > 0, got {c}")
    return ((flat.square().sum(dim=1) + scale**2).sqrt() - scale) / max(d, 1)


def per_sample_loss(name: str, delta: Tensor) -> Tensor:
    """Apply the loss named ``name`` (one of :data:`LOSSES`) to ``delta``, per sample."""
    if name == "squared":
        return squared_error(delta)
    if name == "pseudo-huber":
        return pseudo_huber(delta)
    raise ConfigError(f"unknown loss {name!r}; expected one of: {', '.join(LOSSES)}")


def check_loss(name: str, where: str) -> str:
    """Return ``name`` if it is one of :data:`LOSSES`, else raise :class:`ConfigError`."""
    if name not in LOSSES:
        raise ConfigError(f"{where}: unknown loss {name!r}; expected one of: {', '.join(LOSSES)}")
    return name
