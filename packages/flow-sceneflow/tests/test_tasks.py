import json

import numpy as np
import pytest

import flow_sceneflow.plugin
from flow_core.errors import ConfigError
from flow_core.testing import isolated_registry, run_task
from flow_sceneflow.data.synthetic import LidarSpec, generate_pair

SMALL = {"pairs": 1, "beams": 24, "azimuths": 512}


@pytest.fixture
def registry():
    return isolated_registry(flow_sceneflow.plugin)


def test_icpflow_task_on_generated_pairs(tmp_path, registry):
    metrics = run_task("sceneflow.icpflow", tmp_path, SMALL, registry=registry)
    assert metrics["dynamic_epe3d"] < metrics["nn_dynamic_epe3d"]
    assert metrics["static_epe3d"] < 0.05
    assert (tmp_path / "figures" / "top-down.png").exists()
    assert (tmp_path / "flows" / "pair-0.npz").exists()
    assert json.loads((tmp_path / "metrics.json").read_text()) == pytest.approx(
        metrics, nan_ok=True
    )
    assert "Scene-flow metrics" in (tmp_path / "report.md").read_text()


def test_icpflow_task_on_a_user_file_without_ground_truth(tmp_path, registry):
    pair = generate_pair(11, lidar=LidarSpec(beams=24, azimuths=512))
    np.savez(tmp_path / "pair.npz", pc1=pair.pc1, pc2=pair.pc2)
    out = tmp_path / "run"
    metrics = run_task(
        "sceneflow.icpflow", out, {"scan1": tmp_path / "pair.npz"}, registry=registry
    )
    assert "epe3d" not in metrics
    assert metrics["matches_per_pair"] >= 1
    saved = np.load(out / "flows" / "pair-0.npz")
    assert saved["flow"].shape == pair.pc1.shape


def test_scoop_task_runs_end_to_end(tmp_path, registry):
    overrides = {
        **SMALL,
        "steps": 4,
        "train_scenes": 2,
        "train_points": 64,
        "eval_points": 128,
        "neighbours": 8,
        "top_k": 16,
        "refine_steps": 3,
        "log_every": 2,
        "checkpoint_every": 2,
    }
    metrics = run_task("sceneflow.scoop", tmp_path, overrides, registry=registry)
    for key in ("refined_epe3d", "initial_dynamic_epe3d", "nn_epe3d", "train_loss"):
        assert np.isfinite(metrics[key])
    assert (tmp_path / "figures" / "top-down.png").exists()
    assert any((tmp_path / "checkpoints").iterdir())


@pytest.mark.parametrize(
    ("task", "overrides", "message"),
    [
        ("sceneflow.icpflow", {"pairs": 0}, "pairs"),
        ("sceneflow.icpflow", {"scan2": "b.ply"}, "need scan1"),
        ("sceneflow.icpflow", {"clustering": "kmeans"}, "clustering"),
        ("sceneflow.scoop", {"train_data": "web"}, "train_data"),
        ("sceneflow.scoop", {"refine_steps": -1}, "refine_steps"),
    ],
)
def test_bad_config_values_are_refused(tmp_path, registry, task, overrides, message):
    with pytest.raises(ConfigError, match=message):
        run_task(task, tmp_path, overrides, registry=registry)
