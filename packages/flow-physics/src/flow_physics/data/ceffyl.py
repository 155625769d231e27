"""The ceffyl free-spectrum density format, and the factorised likelihood over it.

A ceffyl density directory (Lamb, Taylor & van Haasteren 2023, arXiv 2303.15442; the form in
which NANOGrav 15-yr free-spectrum posteriors are published, and PTArcade's "ceffyl mode")
holds:

* ``freqs.npy`` — the frequencies ``f_k = k / T`` in Hz, shape ``(n_freq,)``;
* ``log10rhogrid.npy`` — an evenly spaced grid of ``log10 rho`` (rho in s), ``(n_grid,)``;
* ``density.npy`` — log probability densities of ``log10 rho_k`` on that grid, shape
  ``(n_psr, n_freq, n_grid)`` (a Hellings-Downs free spectrum is one pseudo-pulsar);
* ``log10rholabels.txt`` — one label per frequency; ``pulsar_list.txt`` — one name per pulsar.

Factorised likelihood (Lai & Li 2025, arXiv 2504.04211; the card's A2): for a spectral model
with residual PSD ``S(f; theta)``,

    ln L(theta) = sum_psr sum_k ln p_psr,k(log10 rho_k(theta)),   rho_k^2 = S(f_k) / T,

with ``p`` read at the nearest grid bin; ``ln L = -inf`` where ``log10 rho_k`` lies above the
grid's last point, and values below the grid are clamped to its first bin (a spectrum far below
the noise is as likely as the lowest resolved level). The constant bin width is left out.
With ``interpolation="linear"`` the log density is interpolated linearly between the grid
points instead, and above the grid it falls off as ``-1/2 (excess / step)^2`` from its last
value (a differentiable wall in place of ``-inf``): the same values at the grid points, but
continuous and with a gradient everywhere, which gradient-based inference (reverse-KL
training of a flow) needs. The mass this adds above the grid is that of about one grid step
at the top density, negligible for densities that cover their posterior.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from flow_core.errors import ConfigError
from flow_physics.pta.spectra import SpectralModel, psd_to_rho2

__all__ = [
    "CeffylDensities",
    "CeffylFormatError",
    "CeffylLikelihood",
    "read_ceffyl",
    "write_ceffyl",
]

FILES = ("freqs.npy", "log10rhogrid.npy", "density.npy", "log10rholabels.txt", "pulsar_list.txt")


class CeffylFormatError(ConfigError):
    """A ceffyl density directory is missing a file or holds arrays of the wrong shape."""


@dataclass(frozen=True)
class CeffylDensities:
    """The contents of a ceffyl density directory (see the module docstring for shapes)."""

    freqs: np.ndarray
    log10_rho_grid: np.ndarray
    density: np.ndarray
    labels: list[str]
    pulsars: list[str]

    def __post_init__(self) -> None:
        _validate(self, where="CeffylDensities")


def _validate(d: CeffylDensities, where: str) -> None:
    """Raise :class:`CeffylFormatError` naming the file and the expected shape."""
    if d.freqs.ndim != 1 or d.freqs.size < 1 or not np.all(d.freqs > 0):
        raise CeffylFormatError(
            f"{where}/freqs.npy: shape {d.freqs.shape}; expected (n_freq,) positive Hz"
        )
    grid = d.log10_rho_grid
    steps = np.diff(grid) if grid.ndim == 1 else np.zeros(0)
    if grid.ndim != 1 or grid.size < 2 or steps[0] <= 0 or not np.allclose(steps, steps[0]):
        raise CeffylFormatError(
            f"{where}/log10rhogrid.npy: shape {grid.shape}; expected (n_grid >= 2,) evenly "
            "spaced and increasing"
        )
    n_freq, n_grid = d.freqs.size, grid.size
    expected = (len(d.pulsars), n_freq, n_grid)
    if d.density.shape != expected:
        raise CeffylFormatError(
            f"{where}/density.npy: shape {d.density.shape}; expected (n_psr, n_freq, n_grid) = "
            f"{expected} from pulsar_list.txt, freqs.npy and log10rhogrid.npy"
        )
    if len(d.labels) != n_freq:
        raise CeffylFormatError(
            f"{where}/log10rholabels.txt: {len(d.labels)} labels; expected one per frequency "
            f"({n_freq})"
        )
    if not d.pulsars:
        raise CeffylFormatError(f"{where}/pulsar_list.txt: no pulsar names; expected >= 1")


def _lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_ceffyl(directory: str | Path) -> CeffylDensities:
    """Read a ceffyl density directory; a missing file or a wrong shape raises
    :class:`CeffylFormatError` naming the file."""
    root = Path(directory)
    if not root.is_dir():
        raise CeffylFormatError(f"{root}: not a directory; expected a ceffyl density directory")
    missing = [name for name in FILES if not (root / name).is_file()]
    if missing:
        raise CeffylFormatError(
            f"{root}: missing {', '.join(missing)}; expected {', '.join(FILES)}"
        )

    def load(name: str) -> np.ndarray:
        try:
            return np.asarray(np.load(root / name, allow_pickle=False), dtype=np.float64)
        except (ValueError, OSError) as error:
            raise CeffylFormatError(f"{root / name}: not a numeric .npy array ({error})") from None

    return _checked(
        root,
        freqs=load("freqs.npy"),
        log10_rho_grid=load("log10rhogrid.npy"),
        density=load("density.npy"),
        labels=_lines(root / "log10rholabels.txt"),
        pulsars=_lines(root / "pulsar_list.txt"),
    )


def _checked(root: Path, **fields: object) -> CeffylDensities:
    """Build a :class:`CeffylDensities`, naming the directory in any shape error."""
    try:
        return CeffylDensities(**fields)  # type: ignore[arg-type]
    except CeffylFormatError as error:
        raise CeffylFormatError(str(error).replace("CeffylDensities", str(root), 1)) from None


def write_ceffyl(
    directory: str | Path,
    freqs: np.ndarray,
    log10_rho_grid: np.ndarray,
    density: np.ndarray,
    pulsars: Sequence[str],
    labels: Sequence[str] | None = None,
) -> CeffylDensities:
    """Write a ceffyl density directory (created if needed) and return what was written.

    ``labels`` default to ``log10_rho_<k>`` for k = 0..n_freq-1.
    """
    root = Path(directory)
    labels = list(labels) if labels is not None else [f"log10_rho_{k}" for k in range(len(freqs))]
    data = _checked(
        root,
        freqs=np.asarray(freqs, dtype=np.float64),
        log10_rho_grid=np.asarray(log10_rho_grid, dtype=np.float64),
        density=np.asarray(density, dtype=np.float64),
        labels=labels,
        pulsars=list(pulsars),
    )
    root.mkdir(parents=True, exist_ok=True)
    np.save(root / "freqs.npy", data.freqs)
    np.save(root / "log10rhogrid.npy", data.log10_rho_grid)
    np.save(root / "density.npy", data.density)
    (root / "log10rholabels.txt").write_text("\n".join(data.labels) + "\n", encoding="utf-8")
    (root / "pulsar_list.txt").write_text("\n".join(data.pulsars) + "\n", encoding="utf-8")
    return data


class CeffylLikelihood(nn.Module):
    """The factorised free-spectrum likelihood of a spectral model over ceffyl densities.

    Call with ``theta`` of shape ``(n_sets, len(spectrum.parameter_names))`` to get ``ln L`` of
    shape ``(n_sets,)`` (float64); move with ``.to(device)``. ``tspan`` defaults to
    ``1 / freqs[0]``; ``interpolation`` is ``"nearest"`` (ceffyl's lookup) or ``"linear"``.
    """

    freqs: Tensor
    density: Tensor

    def __init__(
        self,
        densities: CeffylDensities,
        spectrum: SpectralModel,
        tspan: float | None = None,
        interpolation: str = "nearest",
    ) -> None:
        super().__init__()
        if interpolation not in ("nearest", "linear"):
            raise ConfigError(
                f"CeffylLikelihood: interpolation={interpolation!r}; accepted: nearest, linear"
            )
        self.interpolation = interpolation
        self.spectrum = spectrum
        self.tspan = float(tspan if tspan is not None else 1.0 / densities.freqs[0])
        grid = densities.log10_rho_grid
        self.grid_start = float(grid[0])
        self.grid_step = float(grid[1] - grid[0])
        self.n_grid = len(grid)
        f64 = torch.float64
        self.register_buffer("freqs", torch.tensor(densities.freqs, dtype=f64))
        self.register_buffer("density", torch.tensor(densities.density, dtype=f64))

    def log10_rho(self, theta: Tensor) -> Tensor:
        """``log10 rho_k = 1/2 log10(S(f_k) / T)`` for each set, shape ``(n_sets, n_freq)``."""
        expected = len(self.spectrum.parameter_names)
        if theta.ndim != 2 or theta.shape[1] != expected:
            raise ConfigError(
                f"CeffylLikelihood: theta has shape {tuple(theta.shape)}; expected "
                f"(n_sets, {expected}) with columns {list(self.spectrum.parameter_names)}"
            )
        psd = self.spectrum.psd(self.freqs, theta.to(self.freqs))
        return 0.5 * torch.log10(psd_to_rho2(psd, self.tspan))

    def forward(self, theta: Tensor) -> Tensor:
        """``ln L`` at the nearest grid bin, -inf above the grid (or interpolated, with a
        smooth wall above it); clamped below the grid."""
        x = self.log10_rho(theta)
        position = ((x - self.grid_start) / self.grid_step).clamp(0, self.n_grid - 1)
        above = x > self.grid_start + (self.n_grid - 1) * self.grid_step
        if self.interpolation == "nearest":
            value = self._pick(torch.round(position).long()).sum((0, -1))
        else:
            lower = position.floor().clamp(max=self.n_grid - 2)
            weight = position - lower
            index = lower.long()
            mixed = (1 - weight) * self._pick(index) + weight * self._pick(index + 1)
            top = self.grid_start + (self.n_grid - 1) * self.grid_step
            excess = ((x - top) / self.grid_step).clamp_min(0.0)
            return (mixed - 0.5 * excess**2).sum((0, -1))
        return torch.where(above.any(-1), torch.full_like(value, -torch.inf), value)

    def _pick(self, index: Tensor) -> Tensor:
        """``density[p, k, index[s, k]]`` for every pulsar p, set s and frequency k, shape
        ``(n_psr, n_sets, n_freq)``."""
        freq_index = torch.arange(self.density.shape[1], device=index.device)
        return self.density[:, freq_index[None, :], index]
