"""flow eval and flow sample: a run's weights reused, the run itself never touched."""

import hashlib
import json

import numpy as np
import pytest
from safetensors.torch import load_file

from flow_core.cli import main
from flow_core.evaluation import evaluate_run
from flow_core.objectives import cfm
from flow_core.testing import run_task

SMALL = {"steps": 40, "hidden": 32, "eval_samples": 200, "checkpoint_every": 10, "log_every": 10}


def _digest(folder):
    """A hash of every file under ``folder`` except evaluations/ (what training wrote)."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "evaluations" not in path.relative_to(folder).parts:
            digest.update(str(path.relative_to(folder)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    run = tmp_path_factory.mktemp("finished") / "run"
    return run, run_task("core.toy2d", run, SMALL)


def test_eval_reproduces_a_finished_runs_metrics_and_leaves_it_untouched(finished):
    run, metrics = finished
    before = _digest(run)
    out, again = evaluate_run(run, device="cpu", show_progress=False)
    assert again == metrics
    assert out.parent == run / "evaluations"
    assert json.loads((out / "metrics.json").read_text()) == metrics
    assert (out / "report.md").exists() and (out / "figures" / "samples.png").exists()
    assert _digest(run) == before


def test_eval_with_another_sampler(finished):
    run, metrics = finished
    overrides = [("sampler", "heun"), ("sample_steps", "4"), ("likelihood", "false")]
    _, other = evaluate_run(run, overrides=overrides, device="cpu", show_progress=False)
    assert other["nfe"] == 8 and metrics["nfe"] == 50
    assert other["sliced_w2_source"] == metrics["sliced_w2_source"]  # same held-out noise
    assert other["sliced_w2"] != metrics["sliced_w2"]


def test_sample_writes_safetensors_and_npy(finished):
    run, _ = finished
    out, counts = evaluate_run(run, mode="sample", count=33, device="cpu", show_progress=False)
    assert counts == {"samples_count": 33.0, "noise_count": 33.0}
    tensors = load_file(str(out / "samples.safetensors"))
    assert tensors["samples"].shape == (33, 2)
    np.testing.assert_array_equal(np.load(out / "samples.npy"), tensors["samples"].numpy())


def test_eval_of_an_interrupted_run_uses_its_latest_checkpoint(tmp_path, monkeypatch):
    calls = {"n": 0}
    original = cfm.ConditionalFlowMatching.__call__

    def interrupted(self, model, batch):
        calls["n"] += 1
        if calls["n"] == 25:
            raise KeyboardInterrupt
        return original(self, model, batch)

    monkeypatch.setattr(cfm.ConditionalFlowMatching, "__call__", interrupted)
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_task("core.toy2d", run, SMALL)
    monkeypatch.setattr(cfm.ConditionalFlowMatching, "__call__", original)
    assert json.loads((run / "status.json").read_text())["state"] == "interrupted"
    assert not (run / "metrics.json").exists()
    before = _digest(run)
    _, metrics = evaluate_run(run, device="cpu", show_progress=False)
    assert metrics["sliced_w2"] > 0 and metrics["nfe"] == 50
    assert _digest(run) == before


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["eval", "{tmp}"], "is not a run directory"),
        (["sample", "{tmp}/nowhere"], "is not a run directory"),
        (["eval", "{run}", "--set", "steps=5"], "training section cannot change"),
        (["eval", "{run}", "--set", "rtol=1e-3"], "no component of this run takes 'rtol'"),
        (["sample", "{run}", "--count", "0"], "--count must be >= 1"),
    ],
)
def test_bad_eval_and_sample_commands_exit_2(finished, tmp_path, capsys, arguments, message):
    run, _ = finished
    argv = [a.format(tmp=tmp_path, run=run) for a in arguments]
    assert main([*argv, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
