"""Demonstrations in robomimic's HDF5 layout, written and read with h5py.

robomimic (Mandlekar et al. 2021, arXiv 2108.03298) stores a dataset as one HDF5 file::

    data/                     attrs: total (transitions), env_args (JSON: env_name, env_kwargs)
      demo_0/                 attrs: num_samples
        obs/<key>             (T, ...) one array per observation key
        actions               (T, action_dim)
        rewards, dones        (T,)
        states                (T, state_dim)   simulator states (optional here)
      demo_1/ ...
    mask/train, mask/valid    demo names (bytes) of each split

:func:`write_demos` writes that layout (observations under ``obs/state``, and each demo's
mode in its attrs); :func:`read_demos` reads it back, or a user's own robomimic file, taking
the observation keys given (or every low-dimensional key, in sorted order) and concatenating
them per step. A file that lacks a required group or dataset raises :class:`ConfigError`
naming the file and the missing key.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from flow_core.errors import ConfigError

__all__ = ["Demo", "Demos", "read_demos", "write_demos"]


@dataclass
class Demo:
    """One demonstration: observations (T, D), actions (T, A), rewards (T,), its mode."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    mode: int = 0


@dataclass
class Demos:
    """A set of demonstrations with the environment they came from."""

    demos: list[Demo]
    env_args: dict[str, Any] = field(default_factory=dict)
    obs_keys: tuple[str, ...] = ("state",)

    @property
    def env_name(self) -> str:
        """The environment's name from ``env_args`` ("" when the file names none)."""
        return str(self.env_args.get("env_name", ""))


def write_demos(path: Path, demos: Demos, valid_fraction: float = 0.1) -> None:
    """Write ``demos`` to ``path`` in robomimic's layout (module docstring)."""
    import h5py

    names = [f"demo_{i}" for i in range(len(demos.demos))]
    n_valid = round(valid_fraction * len(names))
    with h5py.File(path, "w") as handle:
        data = handle.create_group("data")
        data.attrs["env_args"] = json.dumps(demos.env_args)
        data.attrs["total"] = sum(d.actions.shape[0] for d in demos.demos)
        for name, demo in zip(names, demos.demos, strict=True):
            group = data.create_group(name)
            steps = demo.actions.shape[0]
            group.attrs["num_samples"] = steps
            group.attrs["mode"] = demo.mode
            group.create_dataset("obs/state", data=demo.observations.astype(np.float32))
            group.create_dataset("actions", data=demo.actions.astype(np.float32))
            group.create_dataset("rewards", data=demo.rewards.astype(np.float32))
            dones = np.zeros(steps, dtype=np.int64)
            dones[-1] = 1
            group.create_dataset("dones", data=dones)
        mask = handle.create_group("mask")
        mask.create_dataset("train", data=np.array(names[n_valid:], dtype="S"))
        mask.create_dataset("valid", data=np.array(names[:n_valid], dtype="S"))


def _require(group: Any, key: str, path: Path, where: str) -> Any:
    if key not in group:
        present = ", ".join(sorted(group.keys())) or "nothing"
        raise ConfigError(
            f"{path}: robomimic file lacks '{where}{key}' (found {present}); expected"
            " data/demo_<i>/{obs/<key>, actions}"
        )
    return group[key]


def _obs_keys(obs: Any, keys: Sequence[str], path: Path, where: str) -> tuple[str, ...]:
    if keys:
        for key in keys:
            _require(obs, key, path, where)
        return tuple(keys)
    low_dim = sorted(k for k in obs if obs[k].ndim <= 2)
    if not low_dim:
        raise ConfigError(
            f"{path}: '{where}' holds no low-dimensional observation (only images:"
            f" {', '.join(sorted(obs.keys()))}); image policies are not supported yet"
        )
    return tuple(low_dim)


def read_demos(path: Path, obs_keys: Sequence[str] = (), split: str = "") -> Demos:
    """Read a robomimic HDF5 file (module docstring).

    Args:
        path: the file.
        obs_keys: observation keys to concatenate per step; empty takes every key whose
            arrays are at most 2-D (low-dimensional), in sorted order.
        split: ``train`` or ``valid`` reads the demos of that mask; "" reads them all.

    Raises:
        ConfigError: the file is missing, not HDF5, or lacks a required key.
    """
    import h5py

    if not path.is_file():
        raise ConfigError(f"demonstration file {path} does not exist (expected a robomimic .hdf5)")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise ConfigError(f"{path} is not an HDF5 file ({error})") from None
    with handle:
        data = _require(handle, "data", path, "")
        names = sorted((k for k in data if k.startswith("demo")), key=_demo_index)
        if split:
            masks = _require(handle, "mask", path, "")
            chosen = _require(masks, split, path, "mask/")
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in chosen[()]]
        if not names:
            raise ConfigError(f"{path}: 'data' holds no demo_<i> group")
        env_args = json.loads(data.attrs.get("env_args", "{}"))
        keys: tuple[str, ...] = ()
        demos = []
        for name in names:
            demo = _require(data, name, path, "data/")
            where = f"data/{name}/"
            obs = _require(demo, "obs", path, where)
            keys = keys or _obs_keys(obs, obs_keys, path, where + "obs/")
            parts = [
                np.asarray(_require(obs, k, path, where + "obs/")[()], dtype=np.float32)
                for k in keys
            ]
            actions = np.asarray(_require(demo, "actions", path, where)[()], dtype=np.float32)
            steps = actions.shape[0]
            observations = np.concatenate([p.reshape(p.shape[0], -1) for p in parts], axis=1)
            if observations.shape[0] != steps:
                raise ConfigError(
                    f"{path}: {where}obs has {observations.shape[0]} steps but {where}actions"
                    f" has {steps}; they must match"
                )
            rewards = (
                np.asarray(demo["rewards"][()], dtype=np.float32)
                if "rewards" in demo
                else np.zeros(steps, dtype=np.float32)
            )
            demos.append(Demo(observations, actions, rewards, int(demo.attrs.get("mode", 0))))
    return Demos(demos, env_args, keys)


def _demo_index(name: str) -> int:
    tail = name.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else 0
