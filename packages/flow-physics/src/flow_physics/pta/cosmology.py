"""Cosmological constants, Standard-Model degrees of freedom, and the redshift of a signal
emitted at temperature ``T_*`` in the radiation era, for the early-Universe sources.

Constants (natural units, GeV):

* CMB temperature ``T_0 = 2.7255 K`` (Fixsen 2009, arXiv 0911.1955);
* reduced Planck mass ``M_pl = 2.435e18 GeV`` (PDG);
* ``H_0 / h = 100 km/s/Mpc`` in GeV, so results are ``h^2``-free (``h^2 Omega``);
* ``hbar = 6.582119569e-25 GeV s`` converts a rate in GeV to Hz.

Degrees of freedom ``g_rho(T)`` (energy) and ``g_s(T)`` (entropy) are those of an ideal gas
of the Standard-Model particles with their masses (the counting of Kolb & Turner, *The Early
Universe*, 1990; Husdal 2016, arXiv 1609.04979), computed once on a grid in ``T`` and
interpolated linearly in ``log T``:

* each species contributes its exact Bose or Fermi integral at ``m / T``;
* the QCD crossover is a smooth switch between quarks + gluons and a pion gas, logistic in
  ``ln T`` with centre ``T_c = 214 MeV`` and width 0.28, the two numbers fitted to the
  lattice-based tabulation of Saikawa & Shirai 2018 (arXiv 1803.01038) between 80 MeV and
  0.5 GeV;
* neutrinos are decoupled, with ``(T_nu / T)^3 = g_s,gamma+e(T) / (11/2)`` from entropy
  conservation in the photon-electron plasma, so that ``g_rho -> 3.363`` and
  ``g_s -> 3.909`` today.

This is an approximation: across the QCD crossover it follows Saikawa & Shirai's table
within about 10% in ``g_rho`` and ``g_s``, so within about 7% in amplitudes
(``~ g_rho g_s^(-4/3)``) and 2% in peak frequencies; away from it, it is the standard
ideal-gas counting with instantaneous neutrino decoupling.
``g_s`` at matter-radiation equality is its ``T -> 0`` value.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from flow_physics.pta.spectra import HUBBLE_100

__all__ = [
    "GEV_TO_HZ",
    "G_S_EQ",
    "H0_GEV",
    "M_PL",
    "T_0",
    "dilution_h2",
    "dof",
    "redshifted_hubble_hz",
]

T_0 = 2.7255 * 8.617333262e-14
"""CMB temperature today in GeV (2.7255 K)."""
M_PL = 2.435e18
"""Reduced Planck mass in GeV."""
HBAR_GEV_S = 6.582119569e-25
"""``hbar`` in GeV s."""
GEV_TO_HZ = 1.0 / HBAR_GEV_S
"""A rate of 1 GeV in 1/s."""
H0_GEV = HUBBLE_100 * HBAR_GEV_S
"""``H_0 / h`` in GeV (about 2.13e-42)."""

# name: (mass in GeV, internal dof, is_fermion); neutrinos are handled apart
_LEPTONS_EW = (
    (0.0, 2, False),  # photon
    (0.000511, 4, True),  # electron
    (0.1057, 4, True),  # muon
    (1.777, 4, True),  # tau
    (80.38, 6, False),  # W+-
    (91.19, 3, False),  # Z
    (125.1, 1, False),  # Higgs
)
_QUARKS_GLUONS = (
    (0.0, 16, False),  # gluons
    (0.0022, 12, True),  # u
    (0.0047, 12, True),  # d
    (0.095, 12, True),  # s
    (1.27, 12, True),  # c
    (4.18, 12, True),  # b
    (172.7, 12, True),  # t
)
_HADRONS = ((0.138, 3, False),)  # pions
_T_QCD = 0.214
"""Centre of the QCD crossover switch, GeV."""
_QCD_WIDTH = 0.28
"""Width of the switch in ``ln T``."""
_NU_DOF = 6
"""Three left-handed neutrinos and their antineutrinos."""


@functools.cache
def _laguerre() -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    return np.polynomial.laguerre.laggauss(80)


def _species(
    z: NDArray[np.float64], dof: int, fermion: bool
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Contributions of one species at ``z = m / T`` to ``(g_rho, g_s)``: ``dof`` times the
    ratio of its energy and entropy integrals to those of one massless boson."""
    t, w = _laguerre()
    u = z[:, None] + t[None, :]  # E / T, with the Laguerre weight e^-t factored out
    p = np.sqrt(t[None, :] * (2.0 * z[:, None] + t[None, :]))  # |p| / T
    sign = 1.0 if fermion else -1.0
    occupation = np.exp(-z)[:, None] / (1.0 + sign * np.exp(-u))
    rho = (w * p * u**2 * occupation).sum(axis=1)
    entropy = (w * p * (4.0 * u**2 - z[:, None] ** 2) / 3.0 * occupation).sum(axis=1)
    massless = math.pi**4 / 15.0
    return dof * rho / massless, dof * entropy * 3.0 / 4.0 / massless


def _sum(
    species: tuple[tuple[float, int, bool], ...], temperature: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    g_rho = np.zeros_like(temperature)
    g_s = np.zeros_like(temperature)
    for mass, dof, fermion in species:
        rho, entropy = _species(mass / temperature, dof, fermion)
        g_rho += rho
        g_s += entropy
    return g_rho, g_s


@functools.cache
def _dof_table() -> tuple[Tensor, Tensor, Tensor]:
    """``(log10 T, g_rho, g_s)`` on 0.02-dex steps from 1e-6 to 1e6 GeV."""
    log10_t = np.linspace(-6.0, 6.0, 601)
    temperature = 10.0**log10_t
    g_rho, g_s = _sum(_LEPTONS_EW, temperature)
    quark_rho, quark_s = _sum(_QUARKS_GLUONS, temperature)
    hadron_rho, hadron_s = _sum(_HADRONS, temperature)
    deconfined = 1.0 / (1.0 + np.exp(-np.log(temperature / _T_QCD) / _QCD_WIDTH))
    g_rho += deconfined * quark_rho + (1.0 - deconfined) * hadron_rho
    g_s += deconfined * quark_s + (1.0 - deconfined) * hadron_s
    # neutrinos keep T_nu a = const; photons + e+- share the entropy the e+- leave behind
    _, photon_electron_s = _sum(_LEPTONS_EW[:2], temperature)
    nu_ratio3 = photon_electron_s / 5.5
    g_rho += 7.0 / 8.0 * _NU_DOF * nu_ratio3 ** (4.0 / 3.0)
    g_s += 7.0 / 8.0 * _NU_DOF * nu_ratio3
    return (torch.from_numpy(log10_t), torch.from_numpy(g_rho), torch.from_numpy(g_s))


@functools.cache
def _dof_table_on(device: torch.device, dtype: torch.dtype) -> tuple[Tensor, ...]:
    """The table on ``device`` in ``dtype``, copied once."""
    return tuple(t.to(device, dtype) for t in _dof_table())


def dof(log10_t: Tensor) -> tuple[Tensor, Tensor]:
    """``(g_rho, g_s)`` at ``T = 10^log10_t`` GeV (held at the edge values outside
    ``1e-6 .. 1e6`` GeV), linear in ``log10 T`` between grid points, same shape as input."""
    grid, g_rho, g_s = _dof_table_on(log10_t.device, log10_t.dtype)
    value = log10_t.clamp(float(grid[0]), float(grid[-1]))
    step = float(grid[1] - grid[0])
    index = ((value.detach() - float(grid[0])) / step).floor().long().clamp(0, len(grid) - 2)
    frac = (value - grid[index]) / step
    return (
        g_rho[index] + frac * (g_rho[index + 1] - g_rho[index]),
        g_s[index] + frac * (g_s[index + 1] - g_s[index]),
    )


G_S_EQ = 3.909
"""``g_s`` at matter-radiation equality (photons and decoupled neutrinos), ``2 + 21/11``."""


def dilution_h2(g_rho: Tensor, g_s: Tensor) -> Tensor:
    """``h^2 D = (pi^2 / 90) g_rho (g_s,eq / g_s)^(4/3) T_0^4 / (M_pl H_0/h)^2``: the fraction
    of the critical density today of radiation-era GWs that carried all the energy density at
    emission (``Omega_gw,0 h^2 = h^2 D Omega_gw,*``)."""
    constant = math.pi**2 / 90.0 * T_0**4 / (M_PL * H0_GEV) ** 2
    return constant * g_rho * (G_S_EQ / g_s) ** (4.0 / 3.0)


def redshifted_hubble_hz(log10_t_star: Tensor) -> Tensor:
    """``(a_* / a_0) H_*`` in Hz for emission at ``T_* = 10^log10_t_star`` GeV in the radiation
    era: ``(g_s,eq / g_s*)^(1/3) (pi^2 g_rho* / 90)^(1/2) T_0 T_* / M_pl``."""
    g_rho, g_s = dof(log10_t_star)
    constant = T_0 / M_PL * GEV_TO_HZ
    return (
        constant
        * (G_S_EQ / g_s) ** (1.0 / 3.0)
        * torch.sqrt(math.pi**2 * g_rho / 90.0)
        * (10.0**log10_t_star)
    )
