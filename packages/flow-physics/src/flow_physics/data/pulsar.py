"""The pulsar record shared by the data readers, the generator and the likelihoods."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flow_core.errors import ConfigError

__all__ = ["Pulsar"]


@dataclass(frozen=True)
class Pulsar:
    """One pulsar's timing data.

    Attributes:
        name: pulsar name, e.g. ``J0437-4715``.
        toas: times of arrival in s from the array's common origin, shape ``(n_toa,)``.
        toaerrs: TOA uncertainties in s, shape ``(n_toa,)``.
        residuals: timing residuals in s, shape ``(n_toa,)``.
        position: unit vector towards the pulsar, shape ``(3,)``.
        design_matrix: timing-model design matrix, shape ``(n_toa, n_timing)``.
        efac: white-noise scale; the white-noise variance is ``(efac * toaerr)^2``.
    """

    name: str
    toas: np.ndarray
    toaerrs: np.ndarray
    residuals: np.ndarray
    position: np.ndarray
    design_matrix: np.ndarray
    efac: float = 1.0

    def __post_init__(self) -> None:
        n = self.toas.shape
        where = f"pulsar {self.name!r}"
        if len(n) != 1 or n[0] < 2:
            raise ConfigError(f"{where}: toas must be 1-D with >= 2 entries, got shape {n}")
        for label in ("toaerrs", "residuals"):
            shape = getattr(self, label).shape
            if shape != n:
                raise ConfigError(f"{where}: {label} has shape {shape}; expected {n} like toas")
        if self.position.shape != (3,):
            raise ConfigError(f"{where}: position has shape {self.position.shape}; expected (3,)")
        m = self.design_matrix.shape
        if len(m) != 2 or m[0] != n[0] or m[1] >= n[0]:
            raise ConfigError(
                f"{where}: design_matrix has shape {m}; expected ({n[0]}, n_timing < {n[0]})"
            )
        if not np.all(self.toaerrs > 0) or not self.efac > 0:
            raise ConfigError(f"{where}: toaerrs and efac must be positive")
