"""Spectral models of a gravitational-wave background (GWB) and their unit conversions.

Every function is batched in torch: frequencies ``f`` have shape ``(n_freq,)`` and every
parameter has shape ``(n_sets,)`` (or is a Python float); the result has shape
``(n_sets, n_freq)``. Work in float64: the numbers span tens of decades.

Units and conventions (as in NANOGrav 15-yr new-physics searches, arXiv 2306.16219, and in
Lai & Li 2025, arXiv 2504.04211):

* frequency ``f`` in Hz; the reference frequency ``f_yr = 1 / (1 Julian year)`` in Hz;
* characteristic strain ``h_c`` (dimensionless), power law ``h_c = A (f / f_yr)^alpha``
  with ``alpha = (3 - gamma) / 2``, so that ``h_c(f_yr) = A``;
* timing-residual power spectral density ``S(f) = h_c^2 / (12 pi^2 f^3)`` in s^3 (s^2 per Hz),
  which for the power law is ``S = A^2 f_yr^(gamma - 3) f^(-gamma) / (12 pi^2)``;
* per-frequency-bin variance of the Fourier coefficients ``rho^2 = S(f) / T`` in s^2, with
  ``T`` the array's time span in seconds;
* energy density ``Omega_gw(f) = 2 pi^2 f^2 h_c^2 / (3 H0^2)``; we work with
  ``h^2 Omega_gw`` and ``H0 = h * 100 km/s/Mpc``, i.e. ``H0 / h = HUBBLE_100`` in 1/s, so the
  results do not depend on the value of ``h``.

A supermassive-black-hole-binary (SMBHB) background is the power law with ``gamma = 13/3``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from flow_core.errors import ConfigError

__all__ = [
    "F_YR",
    "GAMMA_SMBHB",
    "HUBBLE_100",
    "POWERLAW",
    "SMBHB",
    "SpectralModel",
    "free_spectrum",
    "hc_to_omega_h2",
    "hc_to_psd",
    "omega_h2_to_hc",
    "omega_h2_to_psd",
    "powerlaw_hc",
    "powerlaw_psd",
    "psd_to_hc",
    "psd_to_rho2",
    "smbhb_psd",
    "spectral_model",
]

F_YR = 1.0 / (365.25 * 86400.0)
"""The reference frequency 1/yr in Hz (Julian year)."""

GAMMA_SMBHB = 13.0 / 3.0
"""Residual spectral index of a circular, GW-driven SMBHB population (alpha = -2/3)."""

HUBBLE_100 = 100.0 * 1.0e3 / 3.0856775814913673e22
"""100 km/s/Mpc in 1/s (about 3.2408e-18), i.e. H0 / h."""


def _column(value: Tensor | float, like: Tensor) -> Tensor:
    """A parameter as a ``(n_sets, 1)`` column (a float becomes one set), dtype of ``like``."""
    tensor = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    return tensor.reshape(-1, 1)


def powerlaw_hc(f: Tensor, log10_A: Tensor | float, gamma: Tensor | float) -> Tensor:
    """Characteristic strain of a power law: ``h_c = A (f / f_yr)^((3 - gamma) / 2)``.

    Args:
        f: frequencies in Hz, shape ``(n_freq,)``.
        log10_A: log10 of the strain amplitude at ``f_yr``, shape ``(n_sets,)``.
        gamma: residual spectral index, shape ``(n_sets,)``.

    Returns:
        ``h_c``, dimensionless, shape ``(n_sets, n_freq)``.
    """
    alpha = (3.0 - _column(gamma, f)) / 2.0
    return 10.0 ** _column(log10_A, f) * (f / F_YR) ** alpha


def powerlaw_psd(f: Tensor, log10_A: Tensor | float, gamma: Tensor | float) -> Tensor:
    """Residual PSD of a power law, ``S = A^2 f_yr^(gamma-3) f^(-gamma) / (12 pi^2)``, in s^3.

    Computed in log space so that it stays finite for any amplitude in the usual priors.
    """
    log_a = _column(log10_A, f) * math.log(10.0)
    gamma_col = _column(gamma, f)
    log_s = (
        2.0 * log_a
        + (gamma_col - 3.0) * math.log(F_YR)
        - gamma_col * torch.log(f)
        - math.log(12.0 * math.pi**2)
    )
    return torch.exp(log_s)


def smbhb_psd(f: Tensor, log10_A: Tensor | float) -> Tensor:
    """Residual PSD of an SMBHB background: the power law at ``gamma = 13/3``, in s^3."""
    return powerlaw_psd(f, log10_A, GAMMA_SMBHB)


def hc_to_psd(f: Tensor, hc: Tensor) -> Tensor:
    """Residual PSD ``S(f) = h_c^2 / (12 pi^2 f^3)`` in s^3 from the characteristic strain."""
    return hc**2 / (12.0 * math.pi**2 * f**3)


def psd_to_hc(f: Tensor, psd: Tensor) -> Tensor:
    """Characteristic strain ``h_c = sqrt(12 pi^2 f^3 S(f))`` from the residual PSD in s^3."""
    return torch.sqrt(12.0 * math.pi**2 * f**3 * psd)


def hc_to_omega_h2(f: Tensor, hc: Tensor) -> Tensor:
    """``h^2 Omega_gw(f) = 2 pi^2 f^2 h_c^2 / (3 (H0/h)^2)``, dimensionless."""
    return 2.0 * math.pi**2 * f**2 * hc**2 / (3.0 * HUBBLE_100**2)


def omega_h2_to_hc(f: Tensor, omega_h2: Tensor) -> Tensor:
    """``h_c = (H0 / (pi f)) sqrt(3 Omega_gw / 2)``, written with ``h^2 Omega_gw`` and H0/h."""
    return HUBBLE_100 / (math.pi * f) * torch.sqrt(1.5 * omega_h2)


def omega_h2_to_psd(f: Tensor, omega_h2: Tensor) -> Tensor:
    """Residual PSD ``S(f) = (H0/h)^2 h^2 Omega_gw / (8 pi^4 f^5)`` in s^3.

    The composition of :func:`omega_h2_to_hc` and :func:`hc_to_psd`, written without the
    square root: it is linear in ``Omega``, so its gradient stays finite where a source's
    spectrum is exactly zero (a delta-peak SIGW above its cut-off ``f > 2 f_*``).
    """
    return HUBBLE_100**2 * omega_h2 / (8.0 * math.pi**4 * f**5)


def psd_to_rho2(psd: Tensor, tspan: float) -> Tensor:
    """Variance of each Fourier coefficient, ``rho^2 = S(f) / T``, in s^2 (``T`` in s)."""
    return psd / tspan


@dataclass(frozen=True)
class SpectralModel:
    """A named residual-PSD model of a common process, for the likelihoods.

    Attributes:
        name: short name (``powerlaw``, ``smbhb``).
        parameter_names: names of the parameters, in the order of the columns of ``params``.
        psd: ``psd(f, params)`` with ``f`` of shape ``(n_freq,)`` in Hz and ``params`` of
            shape ``(n_sets, len(parameter_names))``; returns ``S(f)`` in s^3,
            shape ``(n_sets, n_freq)``.
    """

    name: str
    parameter_names: tuple[str, ...]
    psd: Callable[[Tensor, Tensor], Tensor]


def _powerlaw(f: Tensor, params: Tensor) -> Tensor:
    return powerlaw_psd(f, params[:, 0], params[:, 1])


def _smbhb(f: Tensor, params: Tensor) -> Tensor:
    return smbhb_psd(f, params[:, 0])


POWERLAW = SpectralModel("powerlaw", ("log10_A", "gamma"), _powerlaw)
"""Power law with free amplitude and index."""

SMBHB = SpectralModel("smbhb", ("log10_A",), _smbhb)
"""Power law with the SMBHB index 13/3 fixed."""

_MODELS = {model.name: model for model in (POWERLAW, SMBHB)}


def free_spectrum(n_freq: int) -> SpectralModel:
    """A free spectrum: one parameter ``log10_rho_k`` (rho in s) per frequency ``f_k = k / T``.

    Its PSD is ``S(f_k) = rho_k^2 T`` with ``T = 1 / f_1`` (the inverse of ``rho^2 = S / T``),
    so it must be evaluated on the full set ``f_k = k / T, k = 1..n_freq``. This is the model
    whose per-frequency posteriors ceffyl densities tabulate (NANOGrav 15-yr, arXiv 2306.16213).
    """
    if n_freq < 1:
        raise ConfigError(f"free_spectrum: n_freq={n_freq}; accepted: n_freq >= 1")

    def psd(f: Tensor, params: Tensor) -> Tensor:
        if params.shape[-1] != len(f):
            raise ConfigError(
                f"free spectrum with {params.shape[-1]} parameters evaluated at {len(f)} "
                "frequencies; accepted: one log10_rho per frequency"
            )
        return 10.0 ** (2.0 * params) / f[0]

    names = tuple(f"log10_rho_{k}" for k in range(n_freq))
    return SpectralModel(f"free-spectrum-{n_freq}", names, psd)


def spectral_model(name: str) -> SpectralModel:
    """The spectral model called ``name``; a :class:`ConfigError` lists the accepted names."""
    try:
        return _MODELS[name]
    except KeyError:
        accepted = ", ".join(sorted(_MODELS))
        raise ConfigError(f"unknown spectral model {name!r}; accepted: {accepted}") from None
