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
