"""GWs from the annihilation of a network of cosmic domain walls (NANOGrav 15-yr new physics,
Afzal et al. 2023, arXiv 2306.16219, section 3.5; Saikawa 2017, arXiv 1703.02576)::

    h^2 Omega(f) = eps (pi / 960) alpha_*^2 g_rho* (g_s,eq / g_s*)^(4/3) T_0^4 / (M_pl H_0/h)^2
                   S(f / f_0; a = 3, b, c),
    f_0 = (a_*/a_0) H_* = (g_s,eq / g_s*)^(1/3) (pi^2 g_rho* / 90)^(1/2) T_0 T_* / M_pl,

with ``alpha_*`` the walls' share of the energy density when they annihilate at ``T_*``
(GeV), the area parameter ``eps = 0.7`` (simulations of Hiramatsu et al. 2014,
arXiv 1309.5001), and the broken power law ``S`` of
:func:`~flow_physics.pta.phase_transition.spectral_shape` with the causal low-frequency slope
``a = 3``. The prefactor is ``eps (3 / (32 pi)) alpha_*^2 h^2 D`` with the dilution ``h^2 D`` of
:func:`~flow_physics.pta.cosmology.dilution_h2`.

Parameters ``log10_alpha_star ~ U(-2, 1)``, ``log10_T_star ~ U(-4, 4)`` (the ranges of the
NG15-NP model file), ``b ~ U(0.5, 1)``, ``c ~ U(0.3, 3)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from flow_physics.pta.cosmology import dilution_h2, dof, redshifted_hubble_hz
from flow_physics.pta.phase_transition import spectral_shape
from flow_physics.pta.spectra import SpectralModel, omega_h2_to_psd

__all__ = ["DOMAIN_WALLS", "domain_walls_omega_h2"]

EPSILON = 0.7
"""Area parameter of the wall network."""
LOW_SLOPE = 3.0
"""The shape's low-frequency exponent ``a`` (causality)."""


def domain_walls_omega_h2(f: Tensor, params: Tensor) -> Tensor:
    """``h^2 Omega`` of annihilating domain walls, shape ``(n_sets, n_freq)``; ``params``
    columns ``log10_alpha_star, log10_T_star, b, c``."""
    log10_alpha, log10_t, b, c = (params[:, k].reshape(-1, 1) for k in range(4))
    g_rho, g_s = dof(log10_t)
    amplitude = EPSILON * 3.0 / (32.0 * math.pi) * 10.0 ** (2.0 * log10_alpha)
    x = f / redshifted_hubble_hz(log10_t)
    a = torch.full_like(b, LOW_SLOPE)
    return amplitude * dilution_h2(g_rho, g_s) * spectral_shape(x, a, b, c)


def _domain_walls(f: Tensor, params: Tensor) -> Tensor:
    return omega_h2_to_psd(f, domain_walls_omega_h2(f, params))


DOMAIN_WALLS = SpectralModel("dw", ("log10_alpha_star", "log10_T_star", "b", "c"), _domain_walls)
"""Annihilating domain walls (``a = 3`` fixed)."""
