"""Batched pseudo-spectral Navier-Stokes solvers on periodic boxes, in torch.

2-D forced (Kolmogorov) turbulence in vorticity form on [0, 2π]², as in Chandler & Kerswell
(2013, arXiv:1207.4743) and Kochkov et al. (2021, arXiv:2102.01010)::

    ∂ω/∂t + u·∇ω = ν∇²ω − αω + F,   ∇²ψ = −ω,   u = (∂_y ψ, −∂_x ψ),   F = −k_f cos(k_f y)

(the curl of the body force sin(k_f y) x̂), and its 3-D periodic analogue in rotational form
with a Leray projection P onto divergence-free fields::

    ∂u/∂t = P(u × ω) + ν∇²u − αu + sin(k_f y) x̂,   ω = ∇ × u.

Both use the 2/3 rule for dealiasing and an integrating factor exp((−ν|k|² − α)t) for the
linear terms, with classical RK4 for the rest (Canuto et al., *Spectral Methods*, 2006). Fields
are indexed ``[..., x, y]`` (``[..., x, y, z]`` in 3-D) with ``indexing="ij"``; the solver
state is the rFFT over the spatial axes, in the input's dtype and on its device.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = [
    "Kolmogorov2D",
    "Periodic3D",
    "curl_hat",
    "if_rk4_step",
    "periodic_grid",
    "random_velocity_3d",
    "random_vorticity",
    "velocity_from_vorticity",
    "vorticity_from_velocity",
]

Nonlinear = Callable[[torch.Tensor], torch.Tensor]


def if_rk4_step(
    state: torch.Tensor, linear: torch.Tensor, nonlinear: Nonlinear, dt: float
) -> torch.Tensor:
    """One integrating-factor RK4 step of ``ŝ' = L ŝ + N(ŝ)`` with diagonal ``L``::

    a = N(ŝ),  b = N(E½(ŝ + dt/2 a)),  c = N(E½ ŝ + dt/2 b),  d = N(E ŝ + dt E½ c)
    ŝ ← E ŝ + dt/6 (E a + 2 E½ (b + c) + d),   E = exp(L dt),  E½ = exp(L dt/2).
    """
    full = torch.exp(linear * dt)
    half = torch.exp(linear * (dt / 2))
    a = nonlinear(state)
    b = nonlinear(half * (state + dt / 2 * a))
    c = nonlinear(half * state + dt / 2 * b)
    d = nonlinear(full * state + dt * half * c)
    return full * state + dt / 6 * (full * a + 2 * half * (b + c) + d)


def periodic_grid(n: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The ``n`` grid points ``2π j / n`` of one periodic axis."""
    return torch.arange(n, dtype=dtype) * (2 * math.pi / n)


def _wavenumbers(n: int, dims: int, device: torch.device) -> list[torch.Tensor]:
    """Integer wavenumbers of an rFFT over ``dims`` axes of size ``n``, broadcastable."""
    full = torch.fft.fftfreq(n, 1.0 / n, device=device)
    half = torch.fft.rfftfreq(n, 1.0 / n, device=device)
    axes = [full] * (dims - 1) + [half]
    return list(torch.meshgrid(*axes, indexing="ij"))


def _dealias(k: list[torch.Tensor], n: int) -> torch.Tensor:
    """The 2/3-rule mask: keep modes with every |k_i| < n/3."""
    mask = torch.ones_like(k[0], dtype=torch.bool)
    for ki in k:
        mask &= ki.abs() < n / 3
    return mask


@dataclass
class Kolmogorov2D:
    """2-D forced turbulence in vorticity form (see the module docstring) on an ``n``² grid."""

    n: int = 64
    viscosity: float = 1e-3
    drag: float = 0.1
    forcing_k: int = 4
    dt: float = 5e-3
    device: str | torch.device = "cpu"
    dtype: torch.dtype = torch.float64

    def __post_init__(self) -> None:
        device = torch.device(self.device)
        kx, ky = _wavenumbers(self.n, 2, device)
        self.kx, self.ky = kx.to(self.dtype), ky.to(self.dtype)
        k2 = self.kx**2 + self.ky**2
        self.k2_safe = torch.where(k2 == 0, torch.ones_like(k2), k2)
        self.mask = _dealias([kx, ky], self.n)
        self.linear = -self.viscosity * k2 - self.drag
        y = periodic_grid(self.n, self.dtype).to(device)
        forcing = -self.forcing_k * torch.cos(self.forcing_k * y).expand(self.n, self.n)
        self.forcing_hat = torch.fft.rfft2(forcing) if self.forcing_k else torch.zeros_like(k2)

    def nonlinear(self, w_hat: torch.Tensor) -> torch.Tensor:
        """−(u·∇ω)^ (dealiased) + F̂."""
        psi_hat = w_hat / self.k2_safe
        size = (self.n, self.n)
        u = torch.fft.irfft2(1j * self.ky * psi_hat, s=size)
        v = torch.fft.irfft2(-1j * self.kx * psi_hat, s=size)
        wx = torch.fft.irfft2(1j * self.kx * w_hat, s=size)
        wy = torch.fft.irfft2(1j * self.ky * w_hat, s=size)
        advection = torch.fft.rfft2(u * wx + v * wy)
        out: torch.Tensor = -advection * self.mask + self.forcing_hat
        return out

    def step(self, w_hat: torch.Tensor, steps: int = 1) -> torch.Tensor:
        """Advance the spectral vorticity ``w_hat`` (``[..., n, n//2+1]``) by ``steps``."""
        for _ in range(steps):
            w_hat = if_rk4_step(w_hat, self.linear, self.nonlinear, self.dt)
        return w_hat

    def advance(self, w: torch.Tensor, time: float) -> torch.Tensor:
        """The vorticity ``w`` (``[..., n, n]``) advanced by ``time`` (a multiple of dt)."""
        steps = round(time / self.dt)
        out: torch.Tensor = torch.fft.irfft2(
            self.step(torch.fft.rfft2(w) * self.mask, steps), s=w.shape[-2:]
        )
        return out


@dataclass
class Periodic3D:
    """3-D forced turbulence in rotational form (see the module docstring) on an ``n``³ grid."""

    n: int = 16
    viscosity: float = 2e-2
    drag: float = 0.1
    forcing_k: int = 1
    dt: float = 1e-2
    device: str | torch.device = "cpu"
    dtype: torch.dtype = torch.float64

    def __post_init__(self) -> None:
        device = torch.device(self.device)
        k = _wavenumbers(self.n, 3, device)
        self.k = torch.stack(k).to(self.dtype)
        k2 = (self.k**2).sum(0)
        self.k2_safe = torch.where(k2 == 0, torch.ones_like(k2), k2)
        self.mask = _dealias(k, self.n)
        self.linear = -self.viscosity * k2 - self.drag
        y = periodic_grid(self.n, self.dtype).to(device)
        force = torch.zeros(3, self.n, self.n, self.n, device=device, dtype=self.dtype)
        force[0] = torch.sin(self.forcing_k * y)[None, :, None]
        self.forcing_hat = self.project(torch.fft.rfftn(force, dim=(-3, -2, -1)))

    def project(self, u_hat: torch.Tensor) -> torch.Tensor:
        """Leray projection ``û − k (k·û)/|k|²`` onto divergence-free fields (``[..., 3, ...]``)."""
        div = (self.k * u_hat).sum(-4, keepdim=True)
        return u_hat - self.k * div / self.k2_safe

    def nonlinear(self, u_hat: torch.Tensor) -> torch.Tensor:
        """P(u × ω)^ (dealiased) + f̂."""
        size = (self.n,) * 3
        dims = (-3, -2, -1)
        u = torch.fft.irfftn(u_hat, s=size, dim=dims)
        w = torch.fft.irfftn(curl_hat(self.k, u_hat), s=size, dim=dims)
        cross = torch.stack(
            [
                u[..., 1, :, :, :] * w[..., 2, :, :, :] - u[..., 2, :, :, :] * w[..., 1, :, :, :],
                u[..., 2, :, :, :] * w[..., 0, :, :, :] - u[..., 0, :, :, :] * w[..., 2, :, :, :],
                u[..., 0, :, :, :] * w[..., 1, :, :, :] - u[..., 1, :, :, :] * w[..., 0, :, :, :],
            ],
            dim=-4,
        )
        return self.project(torch.fft.rfftn(cross, dim=dims) * self.mask) + self.forcing_hat

    def advance(self, u: torch.Tensor, time: float) -> torch.Tensor:
        """The velocity ``u`` (``[..., 3, n, n, n]``) advanced by ``time`` (a multiple of dt)."""
        dims = (-3, -2, -1)
        u_hat = self.project(torch.fft.rfftn(u, dim=dims) * self.mask)
        for _ in range(round(time / self.dt)):
            u_hat = if_rk4_step(u_hat, self.linear, self.nonlinear, self.dt)
        out: torch.Tensor = torch.fft.irfftn(u_hat, s=u.shape[-3:], dim=dims)
        return out


def curl_hat(k: torch.Tensor, u_hat: torch.Tensor) -> torch.Tensor:
    """The spectral curl ``i k × û`` of a 3-D field ``û`` (``[..., 3, ...]``)."""
    ux, uy, uz = u_hat.unbind(-4)
    return 1j * torch.stack(
        [k[1] * uz - k[2] * uy, k[2] * ux - k[0] * uz, k[0] * uy - k[1] * ux], dim=-4
    )


def random_vorticity(
    batch: int,
    n: int,
    generator: torch.Generator,
    peak: float = 4.0,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Zero-mean random vorticity with spectrum ∝ k⁴ exp(−(k/peak)²), unit rms, ``[b, n, n]``."""
    noise = torch.randn(batch, n, n, generator=generator, dtype=dtype)
    kx, ky = _wavenumbers(n, 2, torch.device("cpu"))
    k = torch.sqrt(kx**2 + ky**2).to(dtype)
    shaped = torch.fft.rfft2(noise) * k**2 * torch.exp(-((k / peak) ** 2) / 2)
    w = torch.fft.irfft2(shaped * _dealias([kx, ky], n), s=(n, n))
    out: torch.Tensor = w / w.std(dim=(-2, -1), keepdim=True)
    return out


def random_velocity_3d(
    batch: int,
    n: int,
    generator: torch.Generator,
    peak: float = 2.0,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Divergence-free zero-mean random velocity, unit rms, ``[b, 3, n, n, n]``."""
    noise = torch.randn(batch, 3, n, n, n, generator=generator, dtype=dtype)
    solver = Periodic3D(n=n, forcing_k=0, dtype=dtype)
    k = torch.sqrt(solver.k2_safe)
    shaped = torch.fft.rfftn(noise, dim=(-3, -2, -1)) * k**2 * torch.exp(-((k / peak) ** 2) / 2)
    shaped = solver.project(shaped * solver.mask)
    shaped[..., 0, 0, 0] = 0
    u = torch.fft.irfftn(shaped, s=(n, n, n), dim=(-3, -2, -1))
    out: torch.Tensor = u / u.std(dim=(-4, -3, -2, -1), keepdim=True)
    return out


def velocity_from_vorticity(w: torch.Tensor) -> torch.Tensor:
    """2-D velocity ``[..., 2, n, n]`` = (∂_y ψ, −∂_x ψ) with ∇²ψ = −ω."""
    n = w.shape[-1]
    kx, ky = (k.to(w.dtype) for k in _wavenumbers(n, 2, w.device))
    k2 = kx**2 + ky**2
    psi_hat = torch.fft.rfft2(w) / torch.where(k2 == 0, torch.ones_like(k2), k2)
    u = torch.fft.irfft2(1j * ky * psi_hat, s=(n, n))
    v = torch.fft.irfft2(-1j * kx * psi_hat, s=(n, n))
    return torch.stack([u, v], dim=-3)


def vorticity_from_velocity(u: torch.Tensor) -> torch.Tensor:
    """2-D vorticity ω = ∂_x v − ∂_y u of a velocity ``[..., 2, n, n]`` (spectral derivatives)."""
    n = u.shape[-1]
    kx, ky = (k.to(u.dtype) for k in _wavenumbers(n, 2, u.device))
    u_hat = torch.fft.rfft2(u)
    out: torch.Tensor = torch.fft.irfft2(
        1j * kx * u_hat[..., 1, :, :] - 1j * ky * u_hat[..., 0, :, :], s=(n, n)
    )
    return out
