"""Turbulence surrogates: a pseudo-spectral Navier-Stokes generator, flow diagnostics, PDEBench
style HDF5 data, and factorized-attention / Fourier neural operators (issue 17)."""

__all__: list[str] = []
