"""robotics.metaworld end to end: a short run beats a random policy; flow eval; bad config."""

import json

import numpy as np
import pytest

import flow_robotics.plugin
from flow_core.errors import ConfigError
from flow_core.evaluation import evaluate_run
from flow_core.testing import isolated_registry, run_task
from flow_robotics.data.robomimic import read_demos
from flow_robotics.envs.metaworld import make_env, run_episode

SMALL = {
    "demos": 12,
    "multimodal": "false",
    "steps": 300,
    "batch_size": 128,
    "hidden": 64,
    "episodes": 6,
    "eval_nfe": "1",
    "horizon": 100,
    "render": "false",
}


def _random_returns(episodes: int, horizon: int) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    returns, wins = [], 0
    for index in range(episodes):
        env = make_env("reach-v3", index, "test")
        episode = run_episode(env, lambda obs: rng.uniform(-1, 1, 4), horizon, seed=index)
        returns.append(episode.rewards.sum())
        wins += episode.success
    return float(np.mean(returns)), wins / episodes


def test_short_meanflow_run_beats_a_random_policy_and_reevaluates(tmp_path):
    registry = isolated_registry(flow_robotics.plugin)
    run = tmp_path / "run"
    metrics = run_task("robotics.metaworld", run, overrides=SMALL, registry=registry)
    random_return, random_success = _random_returns(6, 100)
    assert metrics["return"] > random_return  # rollouts on held-out test placements
    assert metrics["success"] >= random_success
    assert 0 <= metrics["success_low"] <= metrics["success"] <= metrics["success_high"] <= 1
    assert metrics["latency_ms"] > 0 and metrics["erank_late"] > 1
    assert len(read_demos(run / "demos.hdf5").demos) == 12
    assert (run / "figures" / "success-vs-nfe.png").exists()
    assert json.loads((run / "metrics.json").read_text()) == pytest.approx(metrics)
    # flow eval: the same weights at another NFE, without training or new demonstrations
    _, again = evaluate_run(
        run,
        overrides=[("eval_nfe", "2")],
        registry=registry,
        device="cpu",
        show_progress=False,
    )
    assert "success_nfe2" in again and again["erank_late"] == pytest.approx(metrics["erank_late"])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"env": "fly-v3"}, "env must be one of"),
        ({"dispersive": "l3"}, "dispersive must be one of"),
        ({"dispersive_layer": "middle"}, "dispersive_layer must be one of"),
        ({"eval_nfe": "1,x"}, "eval_nfe must be"),
        ({"dispersive": "none", "dispersive_tau": "0.1"}, "dispersive_tau"),
        ({"objective": "nll"}, "invertible"),
    ],
)
def test_bad_settings_are_refused_before_work_starts(tmp_path, overrides, message):
    registry = isolated_registry(flow_robotics.plugin)
    with pytest.raises(ConfigError, match=message):
        run_task("robotics.metaworld", tmp_path, overrides=overrides, registry=registry)


def test_a_malformed_user_file_names_the_missing_key(tmp_path):
    import h5py

    path = tmp_path / "demo.hdf5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("data/demo_0/obs/state", data=np.zeros((3, 39)))
    registry = isolated_registry(flow_robotics.plugin)
    with pytest.raises(ConfigError, match="lacks 'data/demo_0/actions'"):
        run_task("robotics.metaworld", tmp_path / "run", {"data": str(path)}, registry=registry)
