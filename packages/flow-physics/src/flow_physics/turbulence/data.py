"""Turbulence trajectories: seeded generation with :mod:`.solver`, cached as HDF5 in the layout
of PDEBench's CFD files (Takamoto et al. 2022, arXiv:2210.07182), and reading a user's file.

The layout: one dataset per velocity component, ``Vx``, ``Vy`` (and ``Vz`` in 3-D), each
``[trajectories, times, x, y(, z)]``, with the coordinates ``t-coordinate`` (``times``, or
``times + 1`` as PDEBench writes it), ``x-coordinate``, ``y-coordinate`` (``z-coordinate``).
In memory a data set is a tensor ``[trajectories, times, components, x, y(, z)]``.

The generated flows are a *substitute* for the channel-flow DNS of the IFactFormer-m paper
(Yang et al. 2024, arXiv:2412.18840), which cannot be had offline.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from flow_core.errors import ConfigError
from flow_physics.turbulence.solver import (
    Kolmogorov2D,
    Periodic3D,
    random_velocity_3d,
    random_vorticity,
    velocity_from_vorticity,
)

__all__ = [
    "FlowSpec",
    "Trajectories",
    "generate",
    "load_or_generate",
    "read_pdebench",
    "spectral_resize",
    "write_pdebench",
]

COMPONENTS = ("Vx", "Vy", "Vz")
COORDINATES = ("x-coordinate", "y-coordinate", "z-coordinate")


@dataclass(frozen=True)
class FlowSpec:
    """What to simulate: dimension, solver grid, stored grid, physics and time sampling."""

    dimension: int = 2
    solver_grid: int = 64
    grid: int = 32
    viscosity: float = 2e-3
    drag: float = 0.1
    forcing_k: int = 4
    dt: float = 1e-2
    spinup: float = 20.0
    frames: int = 80
    frame_interval: float = 0.2
    trajectories: int = 8


@dataclass
class Trajectories:
    """Velocity fields ``[N, T, C, *grid]`` (float32), the time between frames, and the
    solver's wall-clock seconds per unit of simulated time (nan for a user's file)."""

    fields: torch.Tensor
    frame_interval: float
    solver_seconds_per_time: float = math.nan


def spectral_resize(u: torch.Tensor, m: int, d: int) -> torch.Tensor:
    """Fields with ``d`` trailing spatial axes of ``n`` points, truncated (or zero-padded) to
    ``m`` points per axis in Fourier space (modes |k| < min(n, m)/2 kept)."""
    n = u.shape[-1]
    dims = tuple(range(-d, 0))
    u_hat = torch.fft.fftn(u, dim=dims, norm="forward")
    keep = min(n, m) // 2
    index = torch.cat([torch.arange(0, keep), torch.arange(-keep + 1, 0)])
    for axis in dims:
        u_hat = u_hat.index_select(axis, index % n)
    out = torch.zeros(*u.shape[:-d], *(m,) * d, dtype=u_hat.dtype)
    target = (index % m,) * d
    grids = torch.meshgrid(*target, indexing="ij")
    where: tuple[Any, ...] = (Ellipsis, *grids)
    out[where] = u_hat
    resized: torch.Tensor = torch.fft.ifftn(out, dim=dims, norm="forward").real
    return resized


def generate(spec: FlowSpec, seed: int) -> Trajectories:
    """Simulate ``spec.trajectories`` flows from random states seeded by ``seed``: spin up for
    ``spec.spinup`` time units, then store ``spec.frames`` frames ``frame_interval`` apart."""
    if spec.dimension not in (2, 3):
        raise ConfigError(f"dimension must be 2 or 3, got {spec.dimension}")
    generator = torch.Generator().manual_seed(seed)
    physics: dict[str, Any] = {
        "n": spec.solver_grid,
        "viscosity": spec.viscosity,
        "drag": spec.drag,
        "forcing_k": spec.forcing_k,
        "dt": spec.dt,
    }
    solver: Kolmogorov2D | Periodic3D
    if spec.dimension == 2:
        solver = Kolmogorov2D(**physics)
        state = random_vorticity(spec.trajectories, spec.solver_grid, generator)
    else:
        solver = Periodic3D(**physics)
        state = random_velocity_3d(spec.trajectories, spec.solver_grid, generator)
    frames = []
    started = time.perf_counter()
    state = solver.advance(state, spec.spinup)
    for _ in range(spec.frames):
        velocity = velocity_from_vorticity(state) if spec.dimension == 2 else state
        frames.append(spectral_resize(velocity, spec.grid, spec.dimension))
        state = solver.advance(state, spec.frame_interval)
    elapsed = time.perf_counter() - started
    simulated = spec.spinup + spec.frames * spec.frame_interval
    fields = torch.stack(frames, dim=1).float()
    return Trajectories(fields, spec.frame_interval, elapsed / simulated / spec.trajectories)


def write_pdebench(path: Path, data: Trajectories) -> None:
    """Write ``data`` to ``path`` in the PDEBench CFD layout (see the module docstring)."""
    fields = data.fields.numpy()
    d = fields.ndim - 3
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        for c in range(d):
            f.create_dataset(COMPONENTS[c], data=fields[:, :, c])
        f.create_dataset("t-coordinate", data=np.arange(fields.shape[1]) * data.frame_interval)
        for axis in range(d):
            n = fields.shape[3 + axis]
            f.create_dataset(COORDINATES[axis], data=np.arange(n) * (2 * np.pi / n))
        f.attrs["solver_seconds_per_time"] = data.solver_seconds_per_time


def read_pdebench(path: Path) -> Trajectories:
    """Read a PDEBench-style velocity file; a wrong layout raises :class:`ConfigError` naming
    the file and the key."""
    if not path.is_file():
        raise ConfigError(f"data file {path} does not exist; expected a PDEBench-style HDF5 file")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise ConfigError(f"data file {path} is not an HDF5 file ({error})") from error
    with handle as f:
        if "Vx" not in f or "Vy" not in f:
            raise ConfigError(
                f"{path}: missing key {'Vx' if 'Vx' not in f else 'Vy'!r}; expected datasets"
                f" Vx, Vy (and Vz) of shape [trajectories, times, x, y(, z)], found {sorted(f)}"
            )
        d = 3 if "Vz" in f else 2
        arrays: list[np.ndarray] = []
        for key in COMPONENTS[:d]:
            array = np.asarray(f[key], dtype=np.float32)
            if array.ndim != 2 + d:
                raise ConfigError(
                    f"{path}: key {key!r} has shape {array.shape}; expected {2 + d} axes"
                    f" [trajectories, times, x, y{', z' if d == 3 else ''}]"
                )
            if arrays and array.shape != arrays[0].shape:
                raise ConfigError(
                    f"{path}: key {key!r} has shape {array.shape}, but Vx has {arrays[0].shape}"
                )
            arrays.append(array)
        shape = arrays[0].shape
        if shape[1] < 2:
            raise ConfigError(f"{path}: key 'Vx' has {shape[1]} time(s); at least 2 are needed")
        interval = 1.0
        if "t-coordinate" in f:
            t = np.asarray(f["t-coordinate"], dtype=np.float64).ravel()
            if t.size < 2 or not t[1] > t[0]:
                raise ConfigError(f"{path}: key 't-coordinate' must increase, got {t[:3]}")
            interval = float(t[1] - t[0])
        seconds = float(f.attrs.get("solver_seconds_per_time", math.nan))
    fields = torch.from_numpy(np.stack(arrays, axis=2))
    return Trajectories(fields, interval, seconds)


def load_or_generate(spec: FlowSpec, seed: int, cache_dir: Path) -> tuple[Trajectories, Path]:
    """The cached trajectories of ``(spec, seed)`` under ``cache_dir``, generated on a miss."""
    key = json.dumps({**asdict(spec), "seed": seed}, sort_keys=True)
    name = f"kolmogorov{spec.dimension}d-{hashlib.sha1(key.encode()).hexdigest()[:12]}.h5"
    path = cache_dir / name
    if path.is_file():
        return read_pdebench(path), path
    data = generate(spec, seed)
    write_pdebench(path, data)
    return data, path
