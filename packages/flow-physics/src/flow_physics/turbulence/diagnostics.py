"""Turbulence statistics of velocity fields on a periodic box (2-D ``[..., 2, n, n]`` or 3-D
``[..., 3, n, n, n]``, indexed x, y(, z)), the analogues of the channel-flow statistics that
IFactFormer-m is scored on (Yang et al. 2024, arXiv:2412.18840):

* the shell-summed energy spectrum E(k) = Σ_{k−½ ≤ |k'| < k+½} ½|û_k'|² (normalised so that
  Σ_k E(k) is the mean kinetic energy; for 2-D turbulence an inertial range E ∝ k⁻³);
* energy ½⟨|u|²⟩, enstrophy ½⟨|ω|²⟩ and viscous dissipation ε = ν⟨|ω|²⟩;
* the mean profile ⟨u_x⟩(y) (∝ sin(k_f y) for Kolmogorov forcing, the channel's U⁺), the
  rms profiles of u′ = u − ⟨u⟩(y) and the Reynolds stress ⟨u′v′⟩(y).
"""

from __future__ import annotations

import torch

__all__ = [
    "dissipation",
    "energy",
    "energy_spectrum",
    "enstrophy",
    "profiles",
    "vorticity",
]


def _spatial(u: torch.Tensor) -> int:
    """Number of spatial axes: the channel axis (2 or 3 components) precedes them."""
    for d in (3, 2):
        if u.dim() >= d + 1 and u.shape[-d - 1] == d:
            return d
    raise ValueError(
        f"expected a velocity [..., 2, n, n] or [..., 3, n, n, n], got {tuple(u.shape)}"
    )


def _wavevectors(u: torch.Tensor) -> torch.Tensor:
    d = _spatial(u)
    axes = [torch.fft.fftfreq(s, 1.0 / s, device=u.device) for s in u.shape[-d:]]
    return torch.stack(torch.meshgrid(*axes, indexing="ij")).to(u.dtype)


def energy_spectrum(u: torch.Tensor) -> torch.Tensor:
    """E(k) for integer shells k = 0 .. ⌊n/2⌋ (``[..., n//2 + 1]``)."""
    d = _spatial(u)
    dims = tuple(range(-d, 0))
    u_hat = torch.fft.fftn(u, dim=dims, norm="forward")
    density = 0.5 * (u_hat.abs() ** 2).sum(-d - 1)
    k = torch.sqrt((_wavevectors(u) ** 2).sum(0))
    shells = torch.round(k).long().flatten()
    n_shells = min(u.shape[-d:]) // 2 + 1
    keep = shells < n_shells
    flat = density.flatten(-d)[..., keep]
    out = torch.zeros(*flat.shape[:-1], n_shells, dtype=flat.dtype, device=u.device)
    return out.index_add_(-1, shells[keep], flat)


def energy(u: torch.Tensor) -> torch.Tensor:
    """Mean kinetic energy ½⟨|u|²⟩ per field."""
    d = _spatial(u)
    return 0.5 * (u**2).sum(-d - 1).mean(dim=tuple(range(-d, 0)))


def vorticity(u: torch.Tensor) -> torch.Tensor:
    """ω = ∇ × u by spectral derivatives: ``[..., n, n]`` in 2-D, ``[..., 3, n, n, n]`` in 3-D."""
    d = _spatial(u)
    dims = tuple(range(-d, 0))
    k = _wavevectors(u)
    u_hat = torch.fft.fftn(u, dim=dims)
    comp = u_hat.unbind(-d - 1)
    if d == 2:
        w_hat = 1j * (k[0] * comp[1] - k[1] * comp[0])
        planar: torch.Tensor = torch.fft.ifftn(w_hat, dim=dims).real
        return planar
    w_hat = 1j * torch.stack(
        [
            k[1] * comp[2] - k[2] * comp[1],
            k[2] * comp[0] - k[0] * comp[2],
            k[0] * comp[1] - k[1] * comp[0],
        ],
        dim=-4,
    )
    out: torch.Tensor = torch.fft.ifftn(w_hat, dim=dims).real
    return out


def enstrophy(u: torch.Tensor) -> torch.Tensor:
    """½⟨|ω|²⟩ per field."""
    d = _spatial(u)
    w = vorticity(u)
    squared = w**2 if d == 2 else (w**2).sum(-4)
    return 0.5 * squared.mean(dim=tuple(range(-d, 0)))


def dissipation(u: torch.Tensor, viscosity: float) -> torch.Tensor:
    """Viscous dissipation ε = ν⟨|ω|²⟩ (= ν⟨|∇u|²⟩ on a periodic box) per field."""
    return 2 * viscosity * enstrophy(u)


def profiles(u: torch.Tensor) -> dict[str, torch.Tensor]:
    """Ensemble statistics of fields ``[samples, C, n, n(, n)]`` as functions of y (axis 1):
    ``mean_u`` ⟨u_x⟩(y), ``rms_u``, ``rms_v`` (and ``rms_w``) of the fluctuations about the
    mean profile, and ``uv`` the Reynolds stress ⟨u′v′⟩(y); averages over the samples and x
    (and z)."""
    d = _spatial(u)
    if u.dim() != d + 2:
        raise ValueError(f"expected fields [samples, {d}, ...], got {tuple(u.shape)}")
    over = (0, 2) if d == 2 else (0, 2, 4)
    mean = u.mean(dim=over, keepdim=True)
    fluct = u - mean
    per_component = (0, 1) if d == 2 else (0, 1, 3)
    out = {"mean_u": mean[0, 0].flatten()}
    for c, name in enumerate(("rms_u", "rms_v", "rms_w")[:d]):
        out[name] = torch.sqrt((fluct[:, c] ** 2).mean(dim=per_component))
    out["uv"] = (fluct[:, 0] * fluct[:, 1]).mean(dim=per_component)
    return out
