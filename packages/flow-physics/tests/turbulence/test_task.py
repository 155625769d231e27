"""``physics.turbulence`` end to end on a tiny configuration, and its refusals."""

import json

import h5py
import numpy as np
import pytest

from flow_core.errors import ConfigError
from flow_core.testing import run_task
from flow_physics.tasks.turbulence import TurbulenceConfig

TINY = {
    "solver_grid": 16,
    "grid": 16,
    "viscosity": 0.02,
    "dt": 0.02,
    "spinup": 1.0,
    "frames": 8,
    "frame_interval": 0.1,
    "trajectories": 3,
    "test_trajectories": 1,
    "rollout_steps": 6,
    "width": 16,
    "heads": 2,
    "head_dim": 4,
    "depth": 2,
    "modes": 3,
    "train.steps": 6,
    "train.batch_size": 4,
    "train.log_every": 3,
    "train.checkpoint_every": 3,
}


def test_tiny_run_trains_rolls_out_and_reports(tmp_path):
    out = tmp_path / "run"
    metrics = run_task("physics.turbulence", out, {**TINY, "cache_dir": str(tmp_path / "cache")})
    for name in ("ifactformer_m", "ifactformer_o", "fno", "ifno"):
        assert 0 < metrics[f"{name}_one_step_rel_l2"] < 10
        assert 0 <= metrics[f"{name}_horizon_time"] <= 0.6 + 1e-9
        assert metrics[f"{name}_seconds_per_time"] > 0
    assert metrics["solver_seconds_per_time"] > 0
    report = (out / "report.md").read_text()
    assert "substitute" in report and "ifactformer-m" in report
    for figure in ("rollout-error", "spectra", "profiles", "vorticity-strip"):
        assert (out / "figures" / f"{figure}.png").stat().st_size > 1000
    assert list((out / "checkpoints").iterdir())
    # the cached file is read back by a second run on the user's-file path
    cached = next((tmp_path / "cache").glob("*.h5"))
    again = run_task(
        "physics.turbulence",
        tmp_path / "again",
        {
            "data": str(cached),
            "models": "fno",
            "test_trajectories": 1,
            "rollout_steps": 6,
            "modes": 3,
            "depth": 2,
            "train.steps": 6,
            "train.batch_size": 4,
        },
    )
    assert np.isfinite(again["fno_one_step_rel_l2"])
    assert json.loads(json.dumps(again))


def test_malformed_user_file_is_refused(tmp_path):
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("velocity", data=np.zeros((2, 4, 8, 8, 2)))
    with pytest.raises(ConfigError, match="missing key 'Vx'"):
        run_task("physics.turbulence", tmp_path / "run", {"data": str(path)})


def test_config_refuses_unknown_models_and_short_data():
    with pytest.raises(ConfigError, match="unknown"):
        TurbulenceConfig(models="ifactformer-x")
    with pytest.raises(ConfigError, match="rollout_steps"):
        TurbulenceConfig(frames=10, rollout_steps=10)


def test_task_is_registered(flow_registry):
    import flow_physics.plugin

    registry = flow_registry(flow_physics.plugin)
    names = [e.name for e in registry.entries() if e.plugin.name == "physics"]
    assert "physics.turbulence" in names


def test_tiny_3d_run(tmp_path):
    settings = {
        **TINY,
        "dimension": 3,
        "solver_grid": 8,
        "grid": 8,
        "forcing_k": 1,
        "viscosity": 0.05,
        "spinup": 0.2,
        "frames": 4,
        "rollout_steps": 3,
        "models": "ifactformer-m,fno",
        "modes": 2,
        "train.steps": 2,
        "cache_dir": str(tmp_path / "cache"),
    }
    metrics = run_task("physics.turbulence", tmp_path / "run", settings)
    assert 0 < metrics["ifactformer_m_one_step_rel_l2"] < 10
    assert (tmp_path / "run" / "figures" / "vorticity-strip.png").is_file()
