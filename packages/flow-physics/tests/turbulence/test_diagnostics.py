"""Diagnostics on fields whose statistics are known in closed form."""

import math

import torch

from flow_physics.turbulence.diagnostics import (
    dissipation,
    energy,
    energy_spectrum,
    enstrophy,
    profiles,
)
from flow_physics.turbulence.solver import periodic_grid


def test_spectrum_of_a_shear_wave_sits_in_its_shell():
    _x, y = torch.meshgrid(periodic_grid(16), periodic_grid(16), indexing="ij")
    u = torch.stack([torch.cos(3 * y), torch.zeros_like(y)])[None]
    spectrum = energy_spectrum(u)[0]
    assert spectrum.shape == (9,)
    assert math.isclose(spectrum[3].item(), 0.25, rel_tol=1e-12)
    assert spectrum.sum().item() == spectrum[3].item()
    assert math.isclose(energy(u).item(), 0.25, rel_tol=1e-12)
    # ω = -∂_y u = 3 sin(3y): enstrophy ½⟨ω²⟩ = 9/4, dissipation ν⟨ω²⟩
    assert math.isclose(enstrophy(u).item(), 2.25, rel_tol=1e-12)
    assert math.isclose(dissipation(u, 0.1).item(), 0.45, rel_tol=1e-12)


def test_spectrum_sums_to_energy_in_3d():
    u = torch.randn(2, 3, 8, 8, 8, dtype=torch.float64)
    # shells beyond n/2 (corners) are cut, so compare a band-limited field
    u_hat = torch.fft.fftn(u, dim=(-3, -2, -1))
    k = torch.fft.fftfreq(8, 1 / 8)
    kk = torch.sqrt(k[:, None, None] ** 2 + k[None, :, None] ** 2 + k[None, None, :] ** 2)
    u = torch.fft.ifftn(u_hat * (kk < 3.5), dim=(-3, -2, -1)).real
    assert torch.allclose(energy_spectrum(u).sum(-1), energy(u))


def test_profiles_recover_mean_rms_and_reynolds_stress():
    n = 16
    x, y = torch.meshgrid(periodic_grid(n), periodic_grid(n), indexing="ij")
    phases = torch.arange(4, dtype=torch.float64) * (math.pi / 2)
    samples = []
    for phase in phases:
        fluct = 0.5 * torch.cos(x + phase)
        samples.append(torch.stack([torch.sin(4 * y) + fluct, fluct]))
    stats = profiles(torch.stack(samples))
    assert torch.allclose(stats["mean_u"], torch.sin(4 * periodic_grid(n)), atol=1e-12)
    assert torch.allclose(stats["rms_u"], torch.full((n,), 0.5 / math.sqrt(2), dtype=torch.float64))
    assert torch.allclose(stats["uv"], torch.full((n,), 0.125, dtype=torch.float64))
