"""Cosmological background sources, SMBHB + X sums, and the prior box of every source model.

Formulas and priors follow the NANOGrav 15-yr new-physics search (Afzal et al. 2023,
arXiv 2306.16219) as PTArcade implements them; Lai & Li 2025 (arXiv 2504.04211) compare the
same families with normalizing flows. Every model returns ``h^2 Omega_gw(f)``, turned into a
residual PSD with :func:`~flow_physics.pta.spectra.omega_h2_to_psd`.

* Inflationary GWs (IGW), with the reheating transfer function above the PTA band (``T_rh``
  high, ``T = 1``)::

      h^2 Omega = h^2 Omega_r / 24 * G * r A_s (f / f_CMB)^n_t,

  ``h^2 Omega_r = 4.18e-5``, ``A_s = 2.1e-9``, ``f_CMB = 0.05 / Mpc * c / (2 pi)``;
  ``G = (g_rho / g_rho0) (g_s0 / g_s)^(4/3)`` taken at ``g = 10.75`` (about 0.83).
  Parameters ``log10_r ~ U(-40, 0)``, ``n_t ~ U(0, 6)``.
* Scalar-induced GWs from a delta peak in the curvature spectrum at ``f_*``, ``x = f / f_*``
  (Kohri & Terada 2018, arXiv 1804.08577)::

      h^2 Omega = h^2 Omega_r G A^2 K(x),
      K = 3/64 x^2 (1 - x^2/4)^2 (3x^2 - 2)^2 Theta(2 - x)
          [pi^2 (3x^2 - 2)^2 Theta(2 - sqrt(3) x) + ((3x^2 - 2) ln|1 - 4 / (3x^2)| + 4)^2].

  Parameters ``log10_A ~ U(-3, 1)``, ``log10_f_peak ~ U(-11, -5)`` (Hz).
* Scalar-induced GWs from a log-normal peak of width ``w`` (``sigw-gauss``), the same with
  the kernel ``K(x, w)`` of :mod:`~flow_physics.pta.sigw_gauss` (tabulated once, no closed
  form), which tends to the delta-peak ``K`` as ``w -> 0``. Parameters ``log10_A ~ U(-3, 1)``,
  ``log10_f_peak ~ U(-11, -5)``, ``width ~ U(0.1, 3)``.
* First-order phase transitions, ``pt-bubble`` and ``pt-sound``
  (:mod:`~flow_physics.pta.phase_transition`), and annihilating domain walls, ``dw``
  (:mod:`~flow_physics.pta.domain_walls`).
* Cosmic strings are not implemented: their spectrum has no closed form (NG15-NP used
  tabulated BOS loop spectra), and a radiation-era plateau formula does not hold in the PTA
  band for the tensions PTAs probe.
* ``smbhb+X``: the SMBHB power law (``gamma = 13/3``) plus source ``X``, parameters side by
  side (``log10_A`` first).

Power-law and SMBHB priors are the agnostic ``log10_A ~ U(-18, -11)``, ``gamma ~ U(0, 7)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from flow_core.errors import ConfigError
from flow_physics.pta.domain_walls import DOMAIN_WALLS
from flow_physics.pta.phase_transition import PT_BUBBLE, PT_SOUND
from flow_physics.pta.sigw_gauss import sigw_gauss_kernel
from flow_physics.pta.spectra import (
    POWERLAW,
    SMBHB,
    SpectralModel,
    omega_h2_to_psd,
)

__all__ = [
    "IGW",
    "SIGW_DELTA",
    "SIGW_GAUSS",
    "SOURCE_NAMES",
    "igw_omega_h2",
    "prior_box",
    "sigw_delta_kernel",
    "sigw_delta_omega_h2",
    "sigw_gauss_omega_h2",
    "smbhb_plus",
    "source_model",
]

OMEGA_R_H2 = 4.18e-5
"""Radiation density today, ``h^2 Omega_r``."""
A_S = 2.1e-9
"""Amplitude of the scalar curvature power spectrum at the CMB pivot."""
F_CMB = 0.05 / 3.0856775814913673e22 * 299792458.0 / (2.0 * math.pi)
"""The CMB pivot scale 0.05 / Mpc as a frequency, in Hz (about 7.7e-17)."""
G_FACTOR = (10.75 / 3.36) * (3.91 / 10.75) ** (4.0 / 3.0)
"""``(g_rho / g_rho0) (g_s0 / g_s)^(4/3)`` at ``g_rho = g_s = 10.75`` (about 0.83)."""


def igw_omega_h2(f: Tensor, log10_r: Tensor, n_t: Tensor) -> Tensor:
    """``h^2 Omega_gw`` of inflationary GWs, shape ``(n_sets, n_freq)`` (see module docstring)."""
    log_omega = (
        math.log(OMEGA_R_H2 / 24.0 * G_FACTOR * A_S)
        + log10_r.reshape(-1, 1) * math.log(10.0)
        + n_t.reshape(-1, 1) * torch.log(f / F_CMB)
    )
    return torch.exp(log_omega)


def sigw_delta_kernel(x: Tensor) -> Tensor:
    """The delta-peak SIGW kernel ``K(x)``, ``x = f / f_*`` (zero for ``x >= 2``)."""
    y = 3.0 * x**2 - 2.0
    inside = x < 2.0
    resonant = x < 2.0 / math.sqrt(3.0)
    safe = torch.where(inside, x, torch.ones_like(x))
    log_term = torch.log(torch.abs(1.0 - 4.0 / (3.0 * safe**2)).clamp_min(1e-300))
    bracket = math.pi**2 * y**2 * resonant.to(x) + (y * log_term + 4.0) ** 2
    kernel = 3.0 / 64.0 * safe**2 * (1.0 - safe**2 / 4.0) ** 2 * y**2 * bracket
    return torch.where(inside, kernel, torch.zeros_like(x))


def sigw_delta_omega_h2(f: Tensor, log10_a: Tensor, log10_f_peak: Tensor) -> Tensor:
    """``h^2 Omega_gw`` of SIGWs from a delta peak, shape ``(n_sets, n_freq)``."""
    x = f / 10.0 ** log10_f_peak.reshape(-1, 1)
    amplitude2 = 10.0 ** (2.0 * log10_a.reshape(-1, 1))
    return OMEGA_R_H2 * G_FACTOR * amplitude2 * sigw_delta_kernel(x)


def sigw_gauss_omega_h2(f: Tensor, log10_a: Tensor, log10_f_peak: Tensor, width: Tensor) -> Tensor:
    """``h^2 Omega_gw`` of SIGWs from a log-normal peak of width ``width``, shape
    ``(n_sets, n_freq)``."""
    x = f / 10.0 ** log10_f_peak.reshape(-1, 1)
    amplitude2 = 10.0 ** (2.0 * log10_a.reshape(-1, 1))
    return OMEGA_R_H2 * G_FACTOR * amplitude2 * sigw_gauss_kernel(x, width.reshape(-1, 1))


def _igw(f: Tensor, params: Tensor) -> Tensor:
    return omega_h2_to_psd(f, igw_omega_h2(f, params[:, 0], params[:, 1]))


def _sigw_delta(f: Tensor, params: Tensor) -> Tensor:
    return omega_h2_to_psd(f, sigw_delta_omega_h2(f, params[:, 0], params[:, 1]))


def _sigw_gauss(f: Tensor, params: Tensor) -> Tensor:
    return omega_h2_to_psd(f, sigw_gauss_omega_h2(f, params[:, 0], params[:, 1], params[:, 2]))


IGW = SpectralModel("igw", ("log10_r", "n_t"), _igw)
"""Inflationary GWs with a blue tilt (reheating above the PTA band)."""

SIGW_DELTA = SpectralModel("sigw-delta", ("log10_A", "log10_f_peak"), _sigw_delta)
"""Scalar-induced GWs from a delta peak."""

SIGW_GAUSS = SpectralModel("sigw-gauss", ("log10_A", "log10_f_peak", "width"), _sigw_gauss)
"""Scalar-induced GWs from a log-normal peak."""

_PT_BOX = {"log10_alpha": (-2.0, 1.0), "log10_T_star": (-4.0, 4.0), "log10_HR": (-3.0, 0.0)}

_PRIORS: dict[str, dict[str, tuple[float, float]]] = {
    "powerlaw": {"log10_A": (-18.0, -11.0), "gamma": (0.0, 7.0)},
    "smbhb": {"log10_A": (-18.0, -11.0)},
    "igw": {"log10_r": (-40.0, 0.0), "n_t": (0.0, 6.0)},
    "sigw-delta": {"log10_A": (-3.0, 1.0), "log10_f_peak": (-11.0, -5.0)},
    "sigw-gauss": {"log10_A": (-3.0, 1.0), "log10_f_peak": (-11.0, -5.0), "width": (0.1, 3.0)},
    "pt-bubble": _PT_BOX | {"a": (1.0, 3.0), "b": (1.0, 3.0), "c": (1.0, 3.0)},
    "pt-sound": _PT_BOX | {"a": (3.0, 5.0), "b": (2.0, 4.0), "c": (3.0, 5.0)},
    "dw": {
        "log10_alpha_star": (-2.0, 1.0),
        "log10_T_star": (-4.0, 4.0),
        "b": (0.5, 1.0),
        "c": (0.3, 3.0),
    },
}

_SOURCES = {
    model.name: model
    for model in (
        POWERLAW,
        SMBHB,
        IGW,
        SIGW_DELTA,
        SIGW_GAUSS,
        PT_BUBBLE,
        PT_SOUND,
        DOMAIN_WALLS,
    )
}
_COSMOLOGICAL = ("igw", "sigw-delta", "sigw-gauss", "pt-bubble", "pt-sound", "dw")


def smbhb_plus(other: SpectralModel) -> SpectralModel:
    """The sum of the SMBHB power law and ``other``; ``other``'s parameters get a ``x_``
    prefix and follow ``log10_A``."""
    width = len(SMBHB.parameter_names)

    def psd(f: Tensor, params: Tensor) -> Tensor:
        return SMBHB.psd(f, params[:, :width]) + other.psd(f, params[:, width:])

    names = SMBHB.parameter_names + tuple(f"x_{name}" for name in other.parameter_names)
    return SpectralModel(f"smbhb+{other.name}", names, psd)


SOURCE_NAMES = (*_SOURCES, *(f"smbhb+{name}" for name in _COSMOLOGICAL))
"""Every source accepted by :func:`source_model`."""


def source_model(name: str) -> SpectralModel:
    """The source called ``name`` (see :data:`SOURCE_NAMES`); a :class:`ConfigError` lists
    the accepted names."""
    if name in _SOURCES:
        return _SOURCES[name]
    if name.startswith("smbhb+") and name[len("smbhb+") :] in _COSMOLOGICAL:
        return smbhb_plus(_SOURCES[name[len("smbhb+") :]])
    raise ConfigError(f"unknown source model {name!r}; accepted: {', '.join(SOURCE_NAMES)}")


def prior_box(model: SpectralModel) -> dict[str, tuple[float, float]]:
    """The uniform prior range of each parameter of ``model`` (name -> (low, high))."""
    if model.name.startswith("smbhb+"):
        other = _PRIORS[model.name[len("smbhb+") :]]
        return _PRIORS["smbhb"] | {f"x_{key}": value for key, value in other.items()}
    if model.name not in _PRIORS:
        raise ConfigError(
            f"no prior for source {model.name!r}; accepted: {', '.join(SOURCE_NAMES)}"
        )
    return dict(_PRIORS[model.name])
