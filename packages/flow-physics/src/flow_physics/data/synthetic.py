"""A seeded synthetic pulsar timing array, with the injected truth recorded.

This is substitute data (not NANOGrav): numbers measured on it are labelled synthetic. Each
pulsar gets a random sky position, times of arrival (TOAs) on a cadence with jitter, a late
start and one observing gap, a TOA error, white noise scaled by EFAC, its own power-law red
noise, and its share of a common background that is correlated across pulsars by the
Hellings-Downs matrix (or uncorrelated, ``correlation="curn"``). Red noise and background are
drawn in the Fourier basis of the likelihood, ``sin/cos(2 pi k t / T)`` for ``k = 1..n_inject``
with one time origin and one span ``T`` for the whole array, with coefficient variance
``rho_k^2 = S(f_k) / T`` (see :mod:`flow_physics.pta.spectra`). The residuals are what is left
after a weighted least-squares fit of the quadratic timing model ``[1, t, t^2]``.

Units: seconds for times, TOA errors and residuals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from flow_core.errors import ConfigError
from flow_physics.data.pulsar import Pulsar
from flow_physics.pta.basis import fourier_basis
from flow_physics.pta.hd import hd_matrix
from flow_physics.pta.spectra import powerlaw_psd, psd_to_rho2

__all__ = ["SyntheticArray", "SyntheticConfig", "make_array"]

DAY = 86400.0
YEAR = 365.25 * DAY


@dataclass(frozen=True)
class SyntheticConfig:
    """Settings of :func:`make_array`; the defaults make a 10-pulsar, 12-year array.

    Amplitudes are log10 of the strain amplitude at 1/yr; ``toaerr_us`` and the red-noise
    ranges are drawn per pulsar (log-uniform / uniform).
    """

    n_pulsars: int = 10
    years: float = 12.0
    cadence_days: float = 30.0
    jitter_days: float = 3.0
    start_spread: float = 0.2
    gap_fraction: float = 0.1
    toaerr_us: tuple[float, float] = (0.3, 2.0)
    efac: tuple[float, float] = (0.9, 1.2)
    red_noise_log10_A: tuple[float, float] = (-15.0, -13.8)
    red_noise_gamma: tuple[float, float] = (2.0, 5.0)
    gw_log10_A: float = -14.0
    gw_gamma: float = 13.0 / 3.0
    correlation: Literal["hd", "curn"] = "hd"
    n_inject: int = 30

    def __post_init__(self) -> None:
        if self.n_pulsars < 1 or self.n_inject < 1:
            raise ConfigError("SyntheticConfig: n_pulsars and n_inject must be >= 1")
        if self.correlation not in ("hd", "curn"):
            raise ConfigError(
                f"SyntheticConfig.correlation is {self.correlation!r}; accepted: hd, curn"
            )
        if not 0 <= self.start_spread + self.gap_fraction < 0.8:
            raise ConfigError(
                "SyntheticConfig: start_spread + gap_fraction must lie in [0, 0.8), got "
                f"{self.start_spread + self.gap_fraction}"
            )
        if self.cadence_days <= 0 or self.cadence_days * DAY * 8 > self.years * YEAR:
            raise ConfigError(
                f"SyntheticConfig.cadence_days={self.cadence_days} gives fewer than 8 TOAs "
                f"in {self.years} years; accepted: a positive cadence shorter than years/8"
            )


@dataclass(frozen=True)
class SyntheticArray:
    """A synthetic array: its pulsars, common span ``tspan`` (s), and the injected truth,
    keyed like the likelihood's parameters (``gw_log10_A``, ``<psr>_red_noise_gamma``, ...)."""

    pulsars: list[Pulsar]
    tspan: float
    truth: dict[str, float]
    config: SyntheticConfig


def _name(ra: float, dec: float) -> str:
    """A J2000-style name from the position (hours-minutes, degrees-minutes)."""
    minutes = round(ra / (2 * math.pi) * 24 * 60) % (24 * 60)
    dec_minutes = round(abs(math.degrees(dec)) * 60)
    sign = "+" if dec >= 0 else "-"
    return (
        f"J{minutes // 60:02d}{minutes % 60:02d}{sign}{dec_minutes // 60:02d}{dec_minutes % 60:02d}"
    )


def _toas(rng: np.random.Generator, config: SyntheticConfig, span: float) -> np.ndarray:
    """TOAs on the cadence with jitter, a late start and one gap, sorted, within [0, span]."""
    start = rng.uniform(0.0, config.start_spread) * span
    grid = np.arange(start, span, config.cadence_days * DAY)
    toas = grid + rng.uniform(-1.0, 1.0, grid.shape) * config.jitter_days * DAY
    gap = config.gap_fraction * span
    gap_start = rng.uniform(start, span - gap)
    keep = (toas >= 0.0) & (toas <= span) & ~((toas > gap_start) & (toas < gap_start + gap))
    return np.sort(toas[keep])


def _quadratic_design(toas: np.ndarray, span: float) -> np.ndarray:
    """The quadratic timing model ``[1, t/T, (t/T)^2]`` (scaled columns; the span they cover
    is what matters)."""
    x = toas / span
    return np.stack((np.ones_like(x), x, x**2), axis=1)


def _fit_out(residuals: np.ndarray, design: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Residuals after a weighted least-squares fit of the design matrix."""
    coef, *_ = np.linalg.lstsq(design / sigma[:, None], residuals / sigma, rcond=None)
    fitted: np.ndarray = residuals - design @ coef
    return fitted


def _rho(freqs: torch.Tensor, log10_a: float, gamma: float, span: float) -> np.ndarray:
    """Standard deviation ``rho_k`` in s of each Fourier coefficient of a power law."""
    rho: np.ndarray = np.sqrt(psd_to_rho2(powerlaw_psd(freqs, log10_a, gamma)[0], span).numpy())
    return rho


def make_array(config: SyntheticConfig | None = None, seed: int = 0) -> SyntheticArray:
    """Simulate an array; the same ``config`` and ``seed`` give the same array.

    Args:
        config: settings; ``SyntheticConfig()`` when omitted.
        seed: seeds numpy's generator, which draws everything.

    Returns:
        The pulsars (TOAs from a common origin 0, one span ``T`` = ``config.years``) and the
        truth: ``gw_log10_A``, ``gw_gamma`` and per pulsar ``<name>_red_noise_log10_A``,
        ``<name>_red_noise_gamma``, ``<name>_efac``.
    """
    config = config or SyntheticConfig()
    rng = np.random.default_rng(seed)
    span = config.years * YEAR
    n_psr, n_inj = config.n_pulsars, config.n_inject
    ra = rng.uniform(0.0, 2 * math.pi, n_psr)
    dec = np.arcsin(rng.uniform(-1.0, 1.0, n_psr))
    positions = np.stack((np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)), 1)
    freqs = torch.arange(1, n_inj + 1, dtype=torch.float64) / span
    gw_rho = _rho(freqs, config.gw_log10_A, config.gw_gamma, span)
    if config.correlation == "hd":
        corr = hd_matrix(torch.from_numpy(positions)).numpy()
    else:
        corr = np.eye(n_psr)
    chol = np.linalg.cholesky(corr)
    # Common coefficients: column j of (2 n_inj) components, correlated across pulsars.
    gw_coef = (chol @ rng.standard_normal((n_psr, 2 * n_inj))) * np.repeat(gw_rho, 2)[None, :]
    truth = {"gw_log10_A": config.gw_log10_A, "gw_gamma": config.gw_gamma}
    pulsars: list[Pulsar] = []
    for index in range(n_psr):
        name = _name(ra[index], dec[index])
        if any(p.name == name for p in pulsars):
            name = f"{name}{chr(ord('A') + index % 26)}"
        toas = _toas(rng, config, span)
        toaerr = 10 ** rng.uniform(*np.log10(config.toaerr_us)) * 1e-6
        efac = rng.uniform(*config.efac)
        rn_log10_a = rng.uniform(*config.red_noise_log10_A)
        rn_gamma = rng.uniform(*config.red_noise_gamma)
        rn_rho = _rho(freqs, rn_log10_a, rn_gamma, span)
        rn_coef = rng.standard_normal(2 * n_inj) * np.repeat(rn_rho, 2)
        basis = fourier_basis(toas, n_inj, span)
        sigma = np.full_like(toas, toaerr)
        signal = basis @ (gw_coef[index] + rn_coef) + efac * sigma * rng.standard_normal(len(toas))
        design = _quadratic_design(toas, span)
        pulsars.append(
            Pulsar(
                name=name,
                toas=toas,
                toaerrs=sigma,
                residuals=_fit_out(signal, design, sigma),
                position=positions[index],
                design_matrix=design,
                efac=float(efac),
            )
        )
        truth |= {
            f"{name}_red_noise_log10_A": float(rn_log10_a),
            f"{name}_red_noise_gamma": float(rn_gamma),
            f"{name}_efac": float(efac),
        }
    return SyntheticArray(pulsars, span, truth, config)
