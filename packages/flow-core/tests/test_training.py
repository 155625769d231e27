"""The shared training loop: NaN handling, EMA, evaluation and checkpoint mismatch."""

import json

import pytest
import torch

from flow_core.errors import CheckpointError, TrainingDivergedError
from flow_core.gpu import DistInfo
from flow_core.runner import RunContext
from flow_core.testing import isolated_registry
from flow_core.training import TrainSettings, train


def make_ctx(tmp_path, resume=False):
    tmp_path.mkdir(exist_ok=True)
    return RunContext(
        "core.test",
        None,
        tmp_path,
        torch.device("cpu"),
        0,
        resume,
        isolated_registry(),
        DistInfo(0, 0, 1),
        show_progress=False,
    )


def mse_objective(model, batch):
    loss = (model(batch["x"]) - batch["y"]).pow(2).mean()
    return loss, {}


def batches(generator):
    x = torch.randn(16, 3, generator=generator)
    return {"x": x, "y": x @ torch.tensor([[1.0], [2.0], [3.0]])}


def test_loss_falls_and_logs(tmp_path):
    ctx = make_ctx(tmp_path)
    model = torch.nn.Linear(3, 1)
    result = train(
        ctx,
        model,
        mse_objective,
        batches,
        TrainSettings(
            optimizer="sgd",
            lr=0.1,
            momentum=0.0,
            steps=100,
            log_every=10,
            checkpoint_every=0,
            ema_decay=0.9,
            eval_every=50,
        ),
        eval_fn=lambda m, step: {"w0": m.weight[0, 0]},
    )
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    losses = [line["loss"] for line in lines if "loss" in line]
    assert losses[-1] < 0.01 * losses[0]
    assert [line["step"] for line in lines if "eval/w0" in line] == [50, 100]
    assert result.ema is not None and result.eval_model is result.ema
    assert not torch.equal(result.ema.weight, result.model.weight)
    assert (tmp_path / "checkpoints" / "latest").exists()  # the final step is always saved


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    ctx = make_ctx(tmp_path)
    model = torch.nn.Linear(3, 1)
    calls = {"n": 0}

    def poisoned(model, batch):
        calls["n"] += 1
        loss, metrics = mse_objective(model, batch)
        return (loss * float("nan") if calls["n"] == 25 else loss), metrics

    with pytest.raises(TrainingDivergedError, match=r"step 25.*step 20\) is kept"):
        train(
            ctx,
            model,
            poisoned,
            batches,
            TrainSettings(optimizer="sgd", lr=0.01, momentum=0.0, steps=100, checkpoint_every=10),
        )
    assert (tmp_path / "checkpoints" / "latest").read_text() == "step-00000020"


def test_resume_into_a_different_model_is_refused(tmp_path):
    ctx = make_ctx(tmp_path)
    model = torch.nn.Linear(3, 1)
    train(
        ctx,
        model,
        mse_objective,
        batches,
        TrainSettings(optimizer="sgd", lr=0.1, momentum=0.0, steps=10, checkpoint_every=5),
    )
    other = torch.nn.Linear(3, 2)
    with pytest.raises(CheckpointError, match="does not match the model"):
        train(
            make_ctx(tmp_path, resume=True),
            other,
            lambda m, b: (m(b["x"]).sum(), {}),
            batches,
            TrainSettings(optimizer="sgd", lr=0.1, momentum=0.0, steps=20),
        )


def test_stages_checkpoint_and_resume_separately(tmp_path):
    def run(resume):
        ctx = make_ctx(tmp_path, resume=resume)
        out = []
        for stage in ("teacher", "student"):
            torch.manual_seed(1)
            model = torch.nn.Linear(3, 1)
            result = train(
                ctx,
                model,
                mse_objective,
                batches,
                TrainSettings(
                    optimizer="sgd",
                    lr=0.1,
                    momentum=0.0,
                    steps=20,
                    log_every=10,
                    checkpoint_every=10,
                ),
                stage=stage,
            )
            out.append(result.model.weight.detach().clone())
        return out

    first = run(resume=False)
    assert (tmp_path / "checkpoints" / "teacher" / "latest").exists()
    assert (tmp_path / "checkpoints" / "student" / "latest").exists()
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(x["stage"], x["step"]) for x in lines] == [
        ("teacher", 10),
        ("teacher", 20),
        ("student", 10),
        ("student", 20),
    ]
    again = run(resume=True)  # both stages finished: resuming restores, trains nothing
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 4
