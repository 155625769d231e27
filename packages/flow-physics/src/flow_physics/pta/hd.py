"""The Hellings-Downs correlation of an isotropic gravitational-wave background.

Hellings & Downs 1983 (ApJ 265, L39): the correlation of the timing residuals of two pulsars
separated by the angle ``zeta`` on the sky is, with ``x = (1 - cos zeta) / 2``,

    Gamma(zeta) = 1/2 - x/4 + (3/2) x ln x,

normalised so that ``Gamma -> 1/2`` as ``zeta -> 0`` for two distinct pulsars (the Earth term
only). A pulsar's correlation with itself also has the pulsar term, which adds another 1/2:
the overall correlation matrix has **1 on the diagonal** (the convention of enterprise and of
NANOGrav). Known values: 1/2 at 0 (distinct pulsars), zero near 49.2 deg, ``3/8 - (3/4) ln 2``
(about -0.145) at 90 deg, and 1/4 at 180 deg.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["hd_matrix", "hellings_downs", "unit_vectors"]


def hellings_downs(cos_zeta: Tensor) -> Tensor:
    """Earth-term Hellings-Downs correlation ``1/2 - x/4 + (3/2) x ln x`` of distinct pulsars.

    Args:
        cos_zeta: cosine of the angular separation, any shape, values in [-1, 1].

    Returns:
        The correlation, same shape; the limit 1/2 at ``cos_zeta = 1`` (``x ln x -> 0``).
    """
    x = ((1.0 - cos_zeta) / 2.0).clamp(min=0.0)
    x_log_x = torch.where(x > 0, x * torch.log(torch.where(x > 0, x, 1.0)), 0.0)
    return 0.5 - x / 4.0 + 1.5 * x_log_x


def unit_vectors(ra: Tensor, dec: Tensor) -> Tensor:
    """Unit vectors ``(n, 3)`` towards sky positions given by right ascension and declination
    in radians (equatorial coordinates)."""
    cos_dec = torch.cos(dec)
    return torch.stack((cos_dec * torch.cos(ra), cos_dec * torch.sin(ra), torch.sin(dec)), -1)


def hd_matrix(positions: Tensor) -> Tensor:
    """The ``(n, n)`` Hellings-Downs correlation matrix of ``n`` pulsars.

    Args:
        positions: unit vectors towards the pulsars, shape ``(n, 3)``.

    Returns:
        ``Gamma_ab = hellings_downs(p_a . p_b)`` off the diagonal and 1 (Earth plus pulsar term)
        on it.
    """
    cos_zeta = (positions @ positions.T).clamp(-1.0, 1.0)
    gamma = hellings_downs(cos_zeta)
    eye = torch.eye(len(positions), dtype=torch.bool, device=positions.device)
    return torch.where(eye, torch.ones_like(gamma), gamma)
