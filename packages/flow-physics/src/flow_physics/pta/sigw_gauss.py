"""Scalar-induced GWs from a log-normal (Gaussian in ``ln k``) peak of the curvature spectrum.

The curvature power spectrum is ``P(k) = A / (sqrt(2 pi) w) exp(-ln^2(k / k_*) / (2 w^2))``
(width ``w``, integral ``A`` over ``ln k``; Pi & Sasaki 2020, arXiv 2005.12306), so that
``w -> 0`` gives the delta peak ``A delta(ln(k / k_*))`` of
:func:`~flow_physics.pta.sources.sigw_delta_kernel`. The radiation-era induced spectrum
(Kohri & Terada 2018, arXiv 1804.08577; Espinosa, Racco & Riotto 2018, arXiv 1804.07732),
with ``x = f / f_*``, is::

    K(x, w) = 1/12 int du dv F(u, v) P(x u k_*) P(x v k_*) / A^2,   |u - v| <= 1 <= u + v,
    F = [(1 - d^2)(s^2 - 1) / (s^2 - d^2)]^2 [3 m / (4 u^3 v^3)]^2
        {[-4uv + m ln|(3 - s^2) / (3 - d^2)|]^2 + pi^2 m^2 Theta(s - sqrt 3)},

``s = u + v``, ``d = u - v``, ``m = u^2 + v^2 - 3``. In ``c = ln(uv)``, ``e = ln(u / v)``
the two Gaussians factor into ``exp(-(2 ln x + c)^2 / (4 w^2)) exp(-e^2 / (4 w^2))``, so
``K`` is a 1-D Gaussian smoothing over ``c`` (an FFT convolution on a 0.01 grid) of an inner
integral over ``e`` (Gauss-Legendre, split at the resonance ``s = sqrt 3`` where ``F`` has an
integrable log singularity), done once per width. :func:`sigw_gauss_kernel` interpolates
``ln K`` bilinearly on the table over ``ln x`` and ``w``, so gradients reach ``f_*`` and ``w``.

The table covers ``x`` in ``[e^-12, e^14]`` (every PTA frequency for ``log10 f_peak`` in
``[-11, -5]``) and ``w`` in ``[0.1, 3]`` (the NG15-NP prior); outside it the kernel is held at
the edge value. It is built on first use (1-3 s) and kept for the process.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from numpy.typing import NDArray
from scipy.signal import fftconvolve
from torch import Tensor

__all__ = ["WIDTH_RANGE", "sigw_gauss_kernel", "sigw_gauss_kernel_table"]

WIDTH_RANGE = (0.1, 3.0)
"""Widths ``w`` of the tabulated log-normal peaks (the NG15-NP prior)."""
_LN_X_RANGE = (-12.0, 14.0)
_DC = 0.01
"""Step of the ``c = ln(uv)`` grid."""
_LN_K_FLOOR = -600.0
"""Floor of ``ln K`` (``K ~ 1e-261``, far above the cut-off), so that PSDs stay positive."""


def _induced_weight(u: NDArray[np.float64], v: NDArray[np.float64]) -> NDArray[np.float64]:
    """``F(u, v)`` of the module docstring (without the 1/12)."""
    s, d = u + v, u - v
    geometric = ((1.0 - d**2) * (s**2 - 1.0) / (s**2 - d**2)) ** 2
    w = u**2 + v**2 - 3.0
    prefactor = (3.0 * w / (4.0 * u**3 * v**3)) ** 2
    log_term = np.log(np.abs((3.0 - s**2) / (3.0 - d**2)))
    resonant = np.pi**2 * w**2 * (s > math.sqrt(3.0))
    return geometric * prefactor * ((w * log_term - 4.0 * u * v) ** 2 + resonant)


def _gauss_legendre_on(
    low: NDArray[np.float64], high: NDArray[np.float64], n: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Nodes and weights of an ``n``-point rule on each interval ``[low_i, high_i]``, with
    nodes crowded quadratically towards both ends (``t -> t^2`` maps), where ``F`` has its
    log singularity or vanishes."""
    t, wt = np.polynomial.legendre.leggauss(n)
    # y in [0, 1]: y = (1 - cos(pi (t + 1) / 2)) / 2 crowds nodes at both ends
    theta = math.pi * (t + 1.0) / 2.0
    y = (1.0 - np.cos(theta)) / 2.0
    dy = wt * math.pi / 4.0 * np.sin(theta)
    span = (high - low)[:, None]
    return low[:, None] + span * y[None, :], span * dy[None, :]


def _inner_integral() -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """The grid ``c = ln(uv)`` (step 0.01) and, per ``c``, nodes ``e`` and weights of the
    inner integral: ``F(u, v) uv`` times the quadrature weight (``du dv = uv/2 dc de`` and
    the two signs of ``e`` cancel the 1/2)."""
    c = np.arange(-54.0, 50.0 + _DC / 2, _DC)
    # at fixed uv = e^c: |u - v| <= 1 gives |e| <= e_max, u + v >= 1 gives |e| >= e_min;
    # u + v = sqrt(3) at e_res, where F has a log singularity
    half_root = np.exp(-c / 2.0) / 2.0
    e_max = 2.0 * np.arcsinh(half_root)
    e_min = 2.0 * np.arccosh(np.maximum(half_root, 1.0))
    e_res = np.clip(2.0 * np.arccosh(np.maximum(math.sqrt(3.0) * half_root, 1.0)), e_min, e_max)
    below = _gauss_legendre_on(e_min, e_res, 48)
    above = _gauss_legendre_on(e_res, e_max, 48)
    e = np.concatenate([below[0], above[0]], axis=1)
    weight = np.concatenate([below[1], above[1]], axis=1)
    u = np.exp((c[:, None] + e) / 2.0)
    v = np.exp((c[:, None] - e) / 2.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        integrand = np.nan_to_num(_induced_weight(u, v) * weight, posinf=0.0)
    return c, e, integrand * np.exp(c)[:, None]


def _kernel_on_grid(widths: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``(ln_x, ln_K)``: ``ln K(x, w)`` on a uniform ``ln x`` grid (step 0.01) over
    ``_LN_X_RANGE``, one column per width."""
    c, e, inner_weight = _inner_integral()
    # ln x = -c / 2 on every other c node: K(ln x) is a correlation of inner(c) with a
    # Gaussian of 2 ln x + c, done with an FFT convolution
    keep = (-c / 2.0 >= _LN_X_RANGE[0] - 1e-9) & (-c / 2.0 <= _LN_X_RANGE[1] + 1e-9)
    keep &= np.arange(len(c)) % 2 == 0
    columns = []
    for width in widths:
        inner = (inner_weight * np.exp(-(e**2) / (4.0 * width**2))).sum(axis=1)
        lag = np.arange(-int(12.0 * width / _DC), int(12.0 * width / _DC) + 1) * _DC
        smoothed = fftconvolve(inner, np.exp(-(lag**2) / (4.0 * width**2)), mode="same")
        kernel = smoothed[keep] * _DC / (12.0 * 2.0 * math.pi * width**2)
        with np.errstate(divide="ignore"):
            columns.append(np.maximum(np.log(np.maximum(kernel, 0.0)), _LN_K_FLOOR))
    return -c[keep] / 2.0, np.stack(columns, axis=1)


@functools.cache
def sigw_gauss_kernel_table() -> tuple[Tensor, Tensor, Tensor]:
    """``(ln_x, widths, ln_K)``: the grid and ``ln K(x, w)`` of shape ``(n_x, n_w)``, float64,
    ``ln x`` increasing."""
    widths = np.exp(np.linspace(math.log(WIDTH_RANGE[0]), math.log(WIDTH_RANGE[1]), 25))
    ln_x, ln_k = _kernel_on_grid(widths)
    order = np.argsort(ln_x)
    return (
        torch.from_numpy(np.ascontiguousarray(ln_x[order])),
        torch.from_numpy(widths),
        torch.from_numpy(np.ascontiguousarray(ln_k[order])),
    )


@functools.cache
def _table_on(device: torch.device) -> tuple[Tensor, ...]:
    """The table on ``device``, copied once (not on every likelihood call)."""
    return tuple(t.to(device) for t in sigw_gauss_kernel_table())


def _bracket(grid: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
    """Lower grid index and fractional position of ``value`` (clamped into the grid)."""
    value = value.clamp(float(grid[0]), float(grid[-1]))
    index = torch.searchsorted(grid, value.detach().contiguous(), right=True) - 1
    index = index.clamp(0, len(grid) - 2)
    frac = (value - grid[index]) / (grid[index + 1] - grid[index])
    return index, frac


def sigw_gauss_kernel(x: Tensor, width: Tensor) -> Tensor:
    """``K(x, w)`` of the module docstring, bilinear in ``(ln x, w)`` on the cached table.

    Args:
        x: ``f / f_*``, any shape.
        width: the log-normal width ``w``, broadcastable against ``x``.

    Returns:
        ``K``, dimensionless, of the broadcast shape; differentiable in ``x`` and ``w``.
    """
    ln_x_grid, width_grid, table = _table_on(x.device)
    width = width.to(x)
    ln_x = torch.log(x) + torch.zeros_like(width)  # broadcast both to one shape
    width = width + torch.zeros_like(ln_x)
    i, p = _bracket(ln_x_grid, ln_x)
    j, q = _bracket(width_grid, width)
    ln_k = (
        (1 - p) * (1 - q) * table[i, j]
        + p * (1 - q) * table[i + 1, j]
        + (1 - p) * q * table[i, j + 1]
        + p * q * table[i + 1, j + 1]
    )
    return torch.exp(ln_k)
