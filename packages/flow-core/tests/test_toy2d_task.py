"""core.toy2d end to end: the flow learns the target (distance far below the source's)."""

import json

import pytest

from flow_core.testing import isolated_registry, run_task


@pytest.mark.parametrize("sampler", ["euler", "dopri5"])
def test_learns_target_far_better_than_source(tmp_path, sampler):
    metrics = run_task(
        "core.toy2d",
        tmp_path / "run",
        {"steps": 1000, "hidden": 128, "eval_samples": 500, "sampler": sampler, "sample_steps": 20},
        registry=isolated_registry(),
    )
    assert metrics["mmd"] < 0.2 * metrics["mmd_source"]
    assert metrics["sliced_w2"] < 0.4 * metrics["sliced_w2_source"]
    assert metrics["nfe"] == 20 if sampler == "euler" else metrics["nfe"] > 20
    written = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert written == metrics


def test_same_seed_same_metrics(tmp_path):
    small = {"steps": 50, "hidden": 32, "eval_samples": 200}
    a = run_task("core.toy2d", tmp_path / "a", small, seed=5)
    b = run_task("core.toy2d", tmp_path / "b", small, seed=5)
    c = run_task("core.toy2d", tmp_path / "c", small, seed=6)
    assert a == b
    assert a != c


TINY = {
    "steps": 30,
    "finetune_steps": 10,
    "hidden": 32,
    "depth": 2,
    "eval_samples": 200,
    "sample_steps": 4,
    "checkpoint_every": 0,
    "log_every": 10,
}


@pytest.mark.parametrize(
    ("objective", "nfe", "extra"),
    [
        ("ot-cfm", 4, {}),
        ("ot-cfm-sinkhorn", 4, {}),
        ("w-cfm", 4, {}),
        ("rf-pp", 4, {}),
        ("meanflow", 4, {}),
        ("split-meanflow", 4, {}),
        ("nll", 1, {}),
        ("boss", 4, {"grid": "bellman"}),
        ("cfm", 8, {"sampler": "heun"}),
        ("cfm", 4, {"sampler": "sde"}),
        ("cfm", 4, {"grid": "shifted"}),
    ],
)
def test_every_method_runs_end_to_end(tmp_path, objective, nfe, extra):
    metrics = run_task("core.toy2d", tmp_path / "run", {**TINY, "objective": objective, **extra})
    assert metrics["nfe"] == nfe
    assert all(v == v for k, v in metrics.items() if k != "train_loss")  # no NaN metrics
    kinds = {"meanflow": None, "split-meanflow": None, "nll": "heldout_nll"}
    assert ("straightness" in metrics) == (objective not in kinds)
    assert json.loads((tmp_path / "run" / "status.json").read_text())["state"] == "finished"


def test_boss_trains_teacher_then_finetunes_in_separate_stages(tmp_path):
    run_task("core.toy2d", tmp_path / "run", {**TINY, "objective": "boss", "checkpoint_every": 10})
    stages = {p.name for p in (tmp_path / "run" / "checkpoints").iterdir()}
    assert stages == {"teacher", "finetune"}


def test_reflow_straightens_the_flow(tmp_path):
    base = {**TINY, "steps": 400, "hidden": 64, "reflow_pairs": 2000, "sample_steps": 1}
    plain = run_task("core.toy2d", tmp_path / "plain", base)
    reflowed = run_task("core.toy2d", tmp_path / "reflow", {**base, "reflow_rounds": 1})
    assert reflowed["straightness"] < 0.5 * plain["straightness"]
    assert reflowed["sliced_w2"] < plain["sliced_w2"]  # one Euler step improves with reflow
