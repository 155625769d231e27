"""The pseudo-spectral solvers against exact solutions of the Navier-Stokes equations."""

import math

import torch

from flow_physics.turbulence.diagnostics import energy
from flow_physics.turbulence.solver import (
    Kolmogorov2D,
    Periodic3D,
    periodic_grid,
    random_velocity_3d,
    random_vorticity,
    velocity_from_vorticity,
    vorticity_from_velocity,
)


def test_unforced_2d_mode_decays_at_the_viscous_and_drag_rate():
    # a single Fourier mode has u·∇ω = 0, so ω(t) = ω(0) exp(-(ν|k|² + α) t) exactly
    nu, alpha = 0.01, 0.1
    solver = Kolmogorov2D(n=32, viscosity=nu, drag=alpha, forcing_k=0, dt=0.01)
    x, y = torch.meshgrid(periodic_grid(32), periodic_grid(32), indexing="ij")
    w0 = torch.cos(2 * x + 3 * y)[None]
    w1 = solver.advance(w0, 1.0)
    expected = w0 * math.exp(-(nu * 13 + alpha) * 1.0)
    assert torch.allclose(w1, expected, atol=1e-12)


def test_unforced_3d_shear_mode_decays_at_the_viscous_and_drag_rate():
    nu, alpha = 0.05, 0.1
    solver = Periodic3D(n=8, viscosity=nu, drag=alpha, forcing_k=0, dt=0.02)
    y = periodic_grid(8)
    u0 = torch.zeros(1, 3, 8, 8, 8, dtype=torch.float64)
    u0[0, 0] = torch.sin(2 * y)[None, :, None]
    u1 = solver.advance(u0, 0.5)
    assert torch.allclose(u1, u0 * math.exp(-(nu * 4 + alpha) * 0.5), atol=1e-12)


def test_laminar_kolmogorov_flow_is_a_fixed_point():
    # ω = -k_f cos(k_f y) / (ν k_f² + α) balances forcing, viscosity and drag
    nu, alpha, kf = 0.05, 0.1, 4
    solver = Kolmogorov2D(n=16, viscosity=nu, drag=alpha, forcing_k=kf, dt=0.01)
    y = periodic_grid(16)
    w0 = (-kf * torch.cos(kf * y) / (nu * kf**2 + alpha)).expand(1, 16, 16)
    assert torch.allclose(solver.advance(w0, 0.5), w0, atol=1e-10)


def test_3d_flow_stays_divergence_free_and_bounded():
    generator = torch.Generator().manual_seed(0)
    u0 = random_velocity_3d(2, 8, generator)
    solver = Periodic3D(n=8, viscosity=0.05, drag=0.1, forcing_k=1, dt=0.02)
    u1 = solver.advance(u0, 0.4)
    k = solver.k
    div = (k * torch.fft.rfftn(u1, dim=(-3, -2, -1))).sum(-4).abs().max()
    assert div < 1e-9
    assert torch.isfinite(u1).all() and energy(u1).max() < 10 * energy(u0).max()


def test_velocity_and_vorticity_are_inverse():
    w = random_vorticity(2, 16, torch.Generator().manual_seed(1))
    u = velocity_from_vorticity(w)
    assert torch.allclose(vorticity_from_velocity(u), w - w.mean((-2, -1), keepdim=True))
    div = torch.fft.rfft2(u)
    n = 16
    kx = torch.fft.fftfreq(n, 1 / n)[:, None]
    ky = torch.fft.rfftfreq(n, 1 / n)[None, :]
    assert (kx * div[:, 0] + ky * div[:, 1]).abs().max() < 1e-9
