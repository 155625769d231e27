"""GWs from a first-order phase transition: bubble collisions and sound waves.

The NANOGrav 15-yr new-physics search (Afzal et al. 2023, arXiv 2306.16219, section 3.3)
writes both sources as::

    h^2 Omega(f) = N(a, b, c) h^2 D(T_*) Delta (H_*/beta)^q (kappa alpha / (1 + alpha))^p
                   [Upsilon] S(f / f_0),
    S(x) = (a + b)^c / (b x^(-a/c) + a x^(b/c))^c,
    f_0 = (a_*/a_0) H_* (f_p / beta) / (H_*/beta),      H_*/beta = H_* R_* (8 pi)^(-1/3),

``S`` a broken power law (``x^a`` below the peak, ``x^-b`` above, ``c`` the sharpness of
the turn, ``S(1) = 1``), ``h^2 D`` the redshift of the GW energy density and ``(a_*/a_0) H_*``
the redshifted Hubble rate (:mod:`~flow_physics.pta.cosmology`, Standard-Model ``g_rho(T_*)``,
``g_s(T_*)``), bubble walls at the speed of light (``v_w = 1``, so ``beta R_* = (8 pi)^(1/3)``).
``N = int S d ln x = (b/a)^(a/n) ((a + b)/b)^c Gamma(a/n) Gamma(b/n) / (n Gamma(c))``,
``n = (a + b)/c``, multiplies the amplitude as in the model files released with NG15-NP
(PTArcade), so that the shape's area, not its peak, follows ``Delta``.

* **Bubble collisions** (envelope approximation; Jinno & Takimoto 2017, arXiv 1605.01403):
  ``kappa = 1``, ``p = q = 2``, ``Delta = 0.48 / 11.3`` and ``f_p / beta = 0.35 / 1.759``
  (their ``v_w``-dependent fits at ``v_w = 1``); ``a, b, c ~ U(1, 3)``.
* **Sound waves** (Hindmarsh et al. 2017, arXiv 1704.05871; Caprini et al. 2020,
  arXiv 1910.13125): ``p = 2``, ``q = 1``, ``Delta = 3 * 0.012 * (8 pi)^(1/3)`` (the
  simulated GW efficiency 0.012, per ``H_* R_*``), ``f_p / beta = 0.54``, the kinetic
  efficiency of a fast wall ``kappa = alpha / (0.73 + 0.083 sqrt(alpha) + alpha)`` (Espinosa
  et al. 2010, arXiv 1004.4187) and the finite-lifetime suppression
  ``Upsilon = 1 - (1 + 2 tau_H)^(-1/2)``, ``tau_H = H_* R_* / U``,
  ``U^2 = 3 kappa alpha / (4 (1 + alpha))`` (Guo et al. 2021, arXiv 2007.08537);
  ``a ~ U(3, 5)``, ``b ~ U(2, 4)``, ``c ~ U(3, 5)`` (around the simulated ``a = 3``,
  ``b = 4``, ``c = 7/2``).

The shape exponents ``a, b, c`` are free parameters, as in NG15-NP. Shared priors:
``log10_alpha ~ U(-2, 1)``, ``log10_T_star ~ U(-4, 4)`` (GeV), ``log10_HR ~ U(-3, 0)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from flow_physics.pta.cosmology import dilution_h2, dof, redshifted_hubble_hz
from flow_physics.pta.spectra import SpectralModel, omega_h2_to_psd

__all__ = [
    "PT_BUBBLE",
    "PT_SOUND",
    "pt_bubble_omega_h2",
    "pt_sound_omega_h2",
    "shape_integral",
    "sound_wave_efficiency",
    "sound_wave_suppression",
    "spectral_shape",
]

_BETA_R = (8.0 * math.pi) ** (1.0 / 3.0)
"""``beta R_*`` for bubble walls at the speed of light."""
_BUBBLE_DELTA = 0.48 / (1.0 + 5.3 + 5.0)
_BUBBLE_PEAK = 0.35 / (1.0 + 0.069 + 0.69)
_SOUND_DELTA = 3.0 * 0.012 * _BETA_R
_SOUND_PEAK = 0.54


def _log_shape(ln_x: Tensor, a: Tensor, b: Tensor, c: Tensor) -> Tensor:
    terms = torch.stack([torch.log(b) - a / c * ln_x, torch.log(a) + b / c * ln_x])
    return c * torch.log(a + b) - c * torch.logsumexp(terms, dim=0)


def spectral_shape(x: Tensor, a: Tensor, b: Tensor, c: Tensor) -> Tensor:
    """``S(x) = (a + b)^c / (b x^(-a/c) + a x^(b/c))^c``, computed in log space (finite for
    any ``x > 0``); all arguments broadcast."""
    return torch.exp(_log_shape(torch.log(x), a, b, c))


def _log_shape_integral(a: Tensor, b: Tensor, c: Tensor) -> Tensor:
    n = (a + b) / c
    return (
        a / n * torch.log(b / a)
        + c * torch.log((a + b) / b)
        + torch.lgamma(a / n)
        + torch.lgamma(b / n)
        - torch.log(n)
        - torch.lgamma(c)
    )


def shape_integral(a: Tensor, b: Tensor, c: Tensor) -> Tensor:
    """``N = int_0^inf S(x) dx / x`` in closed form (a Beta integral after ``t = x^n``)."""
    return torch.exp(_log_shape_integral(a, b, c))


def sound_wave_efficiency(alpha: Tensor) -> Tensor:
    """``kappa = alpha / (0.73 + 0.083 sqrt(alpha) + alpha)``: fraction of the released
    vacuum energy in bulk motion for ``v_w -> 1`` (Espinosa et al. 2010)."""
    return alpha / (0.73 + 0.083 * torch.sqrt(alpha) + alpha)


def sound_wave_suppression(hr: Tensor, alpha: Tensor) -> Tensor:
    """``Upsilon = 1 - (1 + 2 tau_H)^(-1/2)``, ``tau_H = H_* R_* / U`` with the rms fluid
    velocity ``U = sqrt(3 kappa alpha / (4 (1 + alpha)))`` (Guo et al. 2021): the sound waves
    source GWs only for the shock-formation time ``R_* / U``."""
    kappa = sound_wave_efficiency(alpha)
    tau_h = hr / torch.sqrt(0.75 * kappa * alpha / (1.0 + alpha))
    return -torch.expm1(-0.5 * torch.log1p(2.0 * tau_h))


def _pt_log_omega(
    f: Tensor, params: Tensor, delta: float, peak: float, q: float, sound: bool
) -> Tensor:
    log10_alpha, log10_t, log10_hr, a, b, c = (params[:, k].reshape(-1, 1) for k in range(6))
    alpha = 10.0**log10_alpha
    hr = 10.0**log10_hr
    h_beta = hr / _BETA_R
    kappa = sound_wave_efficiency(alpha) if sound else torch.ones_like(alpha)
    g_rho, g_s = dof(log10_t)
    f_0 = redshifted_hubble_hz(log10_t) * peak / h_beta
    log_amplitude = (
        _log_shape_integral(a, b, c)
        + torch.log(dilution_h2(g_rho, g_s))
        + math.log(delta)
        + q * torch.log(h_beta)
        + 2.0 * torch.log(kappa * alpha / (1.0 + alpha))
    )
    if sound:
        log_amplitude = log_amplitude + torch.log(sound_wave_suppression(hr, alpha))
    return log_amplitude + _log_shape(torch.log(f / f_0), a, b, c)


def pt_bubble_omega_h2(f: Tensor, params: Tensor) -> Tensor:
    """``h^2 Omega`` of bubble collisions, shape ``(n_sets, n_freq)``; ``params`` columns
    ``log10_alpha, log10_T_star, log10_HR, a, b, c``."""
    return torch.exp(_pt_log_omega(f, params, _BUBBLE_DELTA, _BUBBLE_PEAK, 2.0, sound=False))


def pt_sound_omega_h2(f: Tensor, params: Tensor) -> Tensor:
    """``h^2 Omega`` of sound waves, shape ``(n_sets, n_freq)``; ``params`` columns
    ``log10_alpha, log10_T_star, log10_HR, a, b, c``."""
    return torch.exp(_pt_log_omega(f, params, _SOUND_DELTA, _SOUND_PEAK, 1.0, sound=True))


_PT_PARAMETERS = ("log10_alpha", "log10_T_star", "log10_HR", "a", "b", "c")


def _pt_bubble(f: Tensor, params: Tensor) -> Tensor:
    return omega_h2_to_psd(f, pt_bubble_omega_h2(f, params))


def _pt_sound(f: Tensor, params: Tensor) -> Tensor:
    return omega_h2_to_psd(f, pt_sound_omega_h2(f, params))


PT_BUBBLE = SpectralModel("pt-bubble", _PT_PARAMETERS, _pt_bubble)
"""Bubble collisions of a first-order phase transition."""

PT_SOUND = SpectralModel("pt-sound", _PT_PARAMETERS, _pt_sound)
"""Sound waves of a first-order phase transition."""
