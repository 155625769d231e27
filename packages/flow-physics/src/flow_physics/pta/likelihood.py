"""The Fourier-basis Gaussian PTA likelihood with the timing model marginalised.

For pulsar ``i`` with residuals ``r_i`` (s), timing-model design matrix ``M_i``, Fourier basis
``F_i = [sin(2 pi f_k t), cos(2 pi f_k t)]_{k=1..n_freq}`` with ``f_k = k / T`` (one span ``T``
and one time origin for the whole array) and diagonal white noise
``N_i = diag((efac_i sigma_i)^2)``, the data model is

    r = M eps + F a + n,   eps ~ flat (improper),   a ~ N(0, Phi(theta)),   n ~ N(0, N).

``Phi`` holds the per-pulsar red noise and the common process: for Fourier component ``j`` at
``f_k``, ``Phi[(a, j), (b, j)] = Gamma_ab rho_gw,k^2 + delta_ab rho_a,k^2`` with
``rho^2 = S(f_k) / T`` (s^2), where ``Gamma`` is the identity (``correlation="curn"``, a common
uncorrelated red process) or the Hellings-Downs matrix (``"hd"``). The likelihood of the data
projected orthogonally to the timing model (G-matrix form; van Haasteren & Levin 2013) is

    ln L = -1/2 r^T G (G^T C G)^{-1} G^T r - 1/2 ln det(G^T C G) - (n - m)/2 ln 2 pi,
    C = N + F Phi F^T,

which is the ``C = N + T B T^T`` likelihood with ``T = [M F]``, ``B = diag(inf, Phi)``, up to the
constant ``1/2 ln det(M^T M)``. It is evaluated with the Woodbury identity (van Haasteren &
Vallisneri 2014, arXiv 1407.1838): with ``P = N^-1 - N^-1 M (M^T N^-1 M)^-1 M^T N^-1``,
``Sigma = Phi^-1 + F^T P F`` and ``d = F^T P r``,

    ln L = -1/2 r^T P r + 1/2 d^T Sigma^-1 d - 1/2 ln det Phi - 1/2 ln det Sigma
           - 1/2 ln det N - 1/2 ln det(M^T N^-1 M) - (n - m)/2 ln 2 pi,

using an orthonormal basis of the columns of ``M`` (so that ``det(M^T M) = 1``). Everything
that does not depend on ``theta`` (white noise is fixed) is computed once. Lai & Li 2025
(arXiv 2504.04211) use this likelihood (with per-pulsar red noise and a common process from a
chosen source model) as the target of their normalizing flows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import torch
from scipy.linalg import block_diag
from torch import Tensor, nn

from flow_core.errors import ConfigError
from flow_physics.data.pulsar import Pulsar
from flow_physics.pta.basis import fourier_basis
from flow_physics.pta.hd import hd_matrix
from flow_physics.pta.spectra import POWERLAW, SpectralModel, powerlaw_psd, psd_to_rho2

__all__ = ["PTALikelihood"]


def _projected(pulsar: Pulsar, basis: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    """``F^T P F``, ``F^T P r``, ``r^T P r`` and the constant log terms of one pulsar."""
    variance = (pulsar.efac * pulsar.toaerrs) ** 2
    left, singular, _ = np.linalg.svd(pulsar.design_matrix, full_matrices=False)
    u = left[:, singular > singular[0] * 1e-12]
    n_inv_u = u / variance[:, None]
    chol = np.linalg.cholesky(u.T @ n_inv_u)

    def project(x: np.ndarray) -> np.ndarray:
        """``P x`` for a vector or matrix ``x``."""
        n_inv_x = x / (variance[:, None] if x.ndim == 2 else variance)
        coef = np.linalg.solve(chol.T, np.linalg.solve(chol, u.T @ n_inv_x))
        return n_inv_x - n_inv_u @ coef

    p_r = project(pulsar.residuals)
    p_f = project(basis)
    n, m = u.shape
    log_const = (
        -0.5 * (n - m) * math.log(2 * math.pi)
        - 0.5 * float(np.sum(np.log(variance)))
        - float(np.sum(np.log(np.diag(chol))))
    )
    return basis.T @ p_f, basis.T @ p_r, float(pulsar.residuals @ p_r), log_const


class PTALikelihood(nn.Module):
    """``ln L(theta)`` of a pulsar timing array, batched over parameter sets, in float64.

    Parameters, in order (see :attr:`parameter_names`): per pulsar
    ``<name>_red_noise_log10_A, <name>_red_noise_gamma`` (when ``red_noise``), then the common
    process ``gw_<p>`` for each parameter ``p`` of ``spectrum`` (``gw_log10_A, gw_gamma`` for the
    power law). Move it with ``.to(device)``; call it with ``theta`` of shape
    ``(n_sets, n_params)`` to get ``(n_sets,)``; non-positive-definite covariances give -inf.

    Args:
        pulsars: the array; white noise ``(efac * toaerr)^2`` is held fixed.
        n_freq: number of frequencies ``k / T``, ``k = 1..n_freq``, in the Fourier basis.
        correlation: ``"hd"`` (Hellings-Downs) or ``"curn"`` (common uncorrelated red noise).
        red_noise: include a power-law red noise per pulsar.
        spectrum: the common process's spectral model (default: power law).
        tspan: the span ``T`` in s; default: last minus first TOA over the whole array.
    """

    freqs: Tensor
    ftpf: Tensor
    ftpf_array: Tensor
    d: Tensor
    constant: Tensor
    gamma_hd: Tensor

    def __init__(
        self,
        pulsars: Sequence[Pulsar],
        n_freq: int = 10,
        correlation: Literal["hd", "curn"] = "hd",
        red_noise: bool = True,
        spectrum: SpectralModel = POWERLAW,
        tspan: float | None = None,
    ) -> None:
        super().__init__()
        if correlation not in ("hd", "curn"):
            raise ConfigError(f"PTALikelihood: correlation={correlation!r}; accepted: hd, curn")
        if not pulsars or n_freq < 1:
            raise ConfigError("PTALikelihood: needs at least one pulsar and n_freq >= 1")
        names = [p.name for p in pulsars]
        if len(set(names)) != len(names):
            raise ConfigError(f"PTALikelihood: pulsar names repeat in {names}; accepted: unique")
        if tspan is None:
            tspan = float(max(p.toas.max() for p in pulsars) - min(p.toas.min() for p in pulsars))
        self.correlation = correlation
        self.red_noise = red_noise
        self.spectrum = spectrum
        self.tspan = tspan
        self.n_pulsars = len(pulsars)
        self.parameter_names: list[str] = [
            f"{p.name}_red_noise_{q}" for p in pulsars if red_noise for q in ("log10_A", "gamma")
        ] + [f"gw_{q}" for q in spectrum.parameter_names]
        parts = [_projected(p, fourier_basis(p.toas, n_freq, tspan)) for p in pulsars]
        f64 = torch.float64
        self.register_buffer("freqs", torch.arange(1, n_freq + 1, dtype=f64) / tspan)
        self.register_buffer("ftpf", torch.tensor(np.stack([x[0] for x in parts]), dtype=f64))
        if correlation == "hd":  # the whole array's F^T P F, block-diagonal over pulsars
            whole = block_diag(*[x[0] for x in parts])
            self.register_buffer("ftpf_array", torch.tensor(whole, dtype=f64))
        self.register_buffer("d", torch.tensor(np.stack([x[1] for x in parts]), dtype=f64))
        constant = sum(-0.5 * x[2] + x[3] for x in parts)
        self.register_buffer("constant", torch.tensor(constant, dtype=f64))
        positions = torch.tensor(np.stack([p.position for p in pulsars]), dtype=f64)
        self.register_buffer("gamma_hd", hd_matrix(positions))

    @property
    def n_params(self) -> int:
        """Length of a parameter vector."""
        return len(self.parameter_names)

    def vector(self, values: Mapping[str, float]) -> Tensor:
        """A ``(1, n_params)`` parameter tensor from a mapping by name (e.g. a truth dict)."""
        missing = [name for name in self.parameter_names if name not in values]
        if missing:
            raise ConfigError(f"PTALikelihood.vector: no value for {missing}")
        row = [values[name] for name in self.parameter_names]
        return torch.tensor([row], dtype=torch.float64, device=self.freqs.device)

    def _rho2(self, theta: Tensor) -> tuple[Tensor, Tensor]:
        """Per-component variances: red noise ``(n_sets, n_psr, 2 n_freq)`` (zeros without red
        noise) and common process ``(n_sets, 2 n_freq)``, in s^2."""
        n_sets, n_psr = theta.shape[0], self.n_pulsars
        n_rn = 2 * n_psr if self.red_noise else 0
        gw = psd_to_rho2(self.spectrum.psd(self.freqs, theta[:, n_rn:]), self.tspan)
        if self.red_noise:
            pairs = theta[:, :n_rn].reshape(n_sets * n_psr, 2)
            rn = psd_to_rho2(powerlaw_psd(self.freqs, pairs[:, 0], pairs[:, 1]), self.tspan)
            rn = rn.reshape(n_sets, n_psr, -1)
        else:
            rn = gw.new_zeros(n_sets, n_psr, gw.shape[-1])
        return rn.repeat_interleave(2, -1), gw.repeat_interleave(2, -1)

    def forward(self, theta: Tensor) -> Tensor:
        """``ln L`` for each row of ``theta`` (shape ``(n_sets, n_params)``)."""
        if theta.ndim != 2 or theta.shape[1] != self.n_params:
            raise ConfigError(
                f"PTALikelihood: theta has shape {tuple(theta.shape)}; expected "
                f"(n_sets, {self.n_params}) with columns {self.parameter_names}"
            )
        theta = theta.to(self.freqs)
        rn, gw = self._rho2(theta)
        if self.correlation == "curn":
            quad, logdet, failed = self._curn(rn + gw[:, None, :])
        else:
            quad, logdet, failed = self._hd(rn, gw)
        value = self.constant + 0.5 * quad - 0.5 * logdet
        return torch.where(failed, torch.full_like(value, -math.inf), value)

    def _curn(self, phi: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``d^T Sigma^-1 d``, ``ln det Phi + ln det Sigma`` and where a factorisation failed,
        with Phi diagonal per pulsar."""
        sigma = torch.diag_embed(1.0 / phi) + self.ftpf
        chol, info = torch.linalg.cholesky_ex(sigma)
        quad, logdet_sigma = _quadratic_and_logdet(chol, self.d)
        logdet = torch.log(phi).sum((-1, -2)) + logdet_sigma.sum(-1)
        return quad.sum(-1), logdet, info.ne(0).any(-1)

    def _hd(self, rn: Tensor, gw: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """As :meth:`_curn` with ``Phi`` coupling pulsars through Hellings-Downs at each
        Fourier component; ``Sigma`` is ``(n_psr 2 n_freq)`` square, ordered pulsar-major."""
        n_sets, n_psr, n_comp = rn.shape
        phi = gw[:, :, None, None] * self.gamma_hd + torch.diag_embed(rn.transpose(1, 2))
        chol_phi, info_phi = torch.linalg.cholesky_ex(phi)
        logdet_phi = 2 * torch.log(chol_phi.diagonal(0, -2, -1)).sum((-1, -2))
        phi_inv = torch.cholesky_inverse(chol_phi)  # (n_sets, n_comp, n_psr, n_psr)
        size = n_psr * n_comp
        sigma = self.ftpf_array.expand(n_sets, size, size).clone()
        # Sigma[(a, j), (b, j)] += Phi_j^-1[a, b]: a strided view of the component diagonal.
        sigma.view(n_sets, n_psr, n_comp, n_psr, n_comp).diagonal(0, 2, 4).add_(
            phi_inv.permute(0, 2, 3, 1)
        )
        chol, info = torch.linalg.cholesky_ex(sigma)
        quad, logdet_sigma = _quadratic_and_logdet(chol, self.d.reshape(size))
        return quad, logdet_phi + logdet_sigma, info.ne(0) | info_phi.ne(0).any(-1)


def _quadratic_and_logdet(chol: Tensor, d: Tensor) -> tuple[Tensor, Tensor]:
    """``d^T Sigma^-1 d = |L^-1 d|^2`` and ``ln det Sigma`` from the Cholesky factor ``L``
    (batched; ``d`` broadcasts against ``chol``'s leading dimensions)."""
    rhs = d.expand(chol.shape[:-1]).unsqueeze(-1)
    white = torch.linalg.solve_triangular(chol, rhs, upper=False).squeeze(-1)
    return (white**2).sum(-1), 2 * torch.log(chol.diagonal(0, -2, -1)).sum(-1)
