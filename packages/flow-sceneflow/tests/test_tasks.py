import json

import numpy as np
import pytest

import flow_sceneflow.plugin
from flow_core.errors import ConfigError
from flow_core.testing import isolated_registry, run_task
from flow_sceneflow.data.synthetic import LidarSpec, generate_pair, in_convention

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


def test_icpflow_task_on_an_av2_layout_file_states_its_assumptions(tmp_path, registry):
    pair = in_convention(generate_pair(12, lidar=LidarSpec(beams=24, azimuths=512)), "av2")
    pad = np.full((4, 3), np.nan)
    np.savez(
        tmp_path / "av2.npz",
        pc1=np.vstack([pair.pc1, pad]),
        pc2=np.vstack([pair.pc2, pad]),
        gt_flow_0_1=np.vstack([pair.flow, pad]),
        pc1_flows_valid_idx=np.arange(pair.pc1.shape[0]),
        pc2_flows_valid_idx=np.arange(pair.pc2.shape[0]),
    )
    out = tmp_path / "run"
    metrics = run_task("sceneflow.icpflow", out, {"data": tmp_path / "av2.npz"}, registry=registry)
    report = (out / "report.md").read_text()
    assert "ego-compensated (file layout)" in report and "ground=none" in report
    assert "float16" in report
    assert metrics["static_epe3d"] < 0.01
    assert metrics["dynamic_epe3d"] < metrics["nn_dynamic_epe3d"] / 3


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
        ("sceneflow.icpflow", {"scan2": "b.ply"}, "needs scan1"),
        ("sceneflow.icpflow", {"data": "a.npz", "scan1": "b.ply"}, "not both"),
        ("sceneflow.icpflow", {"convention": "lidar"}, "convention"),
        ("sceneflow.icpflow", {"ground_removed": "maybe"}, "ground_removed"),
        ("sceneflow.icpflow", {"icp_backend": "cuda"}, "icp_backend"),
        ("sceneflow.icpflow", {"ground": "flat"}, "ground"),
        ("sceneflow.icpflow", {"clustering": "kmeans"}, "clustering"),
        ("sceneflow.scoop", {"train_data": "web"}, "train_data"),
        ("sceneflow.scoop", {"refine_steps": -1}, "refine_steps"),
    ],
)
def test_bad_config_values_are_refused(tmp_path, registry, task, overrides, message):
    with pytest.raises(ConfigError, match=message):
        run_task(task, tmp_path, overrides, registry=registry)
