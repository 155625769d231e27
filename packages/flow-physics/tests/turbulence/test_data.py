"""Seeded generation, the PDEBench HDF5 layout and clear errors on malformed files."""

from dataclasses import replace

import h5py
import numpy as np
import pytest
import torch

from flow_core.errors import ConfigError
from flow_physics.turbulence.data import (
    FlowSpec,
    generate,
    load_or_generate,
    read_pdebench,
    spectral_resize,
)

TINY = FlowSpec(
    solver_grid=16,
    grid=8,
    spinup=0.2,
    frames=3,
    frame_interval=0.1,
    trajectories=2,
    dt=0.02,
    viscosity=0.05,
    forcing_k=1,
)


def test_generation_is_seeded_and_cached(tmp_path):
    first, path = load_or_generate(TINY, 3, tmp_path)
    assert first.fields.shape == (2, 3, 2, 8, 8)
    again, same = load_or_generate(TINY, 3, tmp_path)
    assert same == path and torch.equal(first.fields, again.fields)
    other = generate(TINY, 4)
    assert not torch.allclose(other.fields, first.fields)
    with h5py.File(path) as f:
        assert f["Vx"].shape == (2, 3, 8, 8) and "t-coordinate" in f and "x-coordinate" in f
    assert again.frame_interval == pytest.approx(0.1)


def test_3d_generation_shapes(tmp_path):
    spec = replace(TINY, dimension=3, solver_grid=8, spinup=0.04, frames=2, trajectories=1)
    data, _ = load_or_generate(spec, 0, tmp_path)
    assert data.fields.shape == (1, 2, 3, 8, 8, 8)


def test_spectral_resize_keeps_band_limited_fields():
    grid = torch.arange(32, dtype=torch.float64) * (2 * np.pi / 32)
    x, y = torch.meshgrid(grid, grid, indexing="ij")
    field = torch.sin(3 * x) * torch.cos(2 * y)
    small = spectral_resize(field, 16, 2)
    assert torch.allclose(small, field[::2, ::2], atol=1e-12)


def test_malformed_files_name_the_key(tmp_path):
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("Vx", data=np.zeros((1, 4, 8, 8)))
    with pytest.raises(ConfigError, match="missing key 'Vy'"):
        read_pdebench(path)
    with h5py.File(path, "a") as f:
        f.create_dataset("Vy", data=np.zeros((1, 4, 8)))
    with pytest.raises(ConfigError, match="key 'Vy' has shape"):
        read_pdebench(path)
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(ConfigError, match="not an HDF5 file"):
        read_pdebench(tmp_path / "text.h5")
    with pytest.raises(ConfigError, match="does not exist"):
        read_pdebench(tmp_path / "missing.h5")
