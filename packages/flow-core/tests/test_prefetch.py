"""OT pairing one step ahead: the same numbers as pairing in the step, and across a resume."""

import threading

import pytest
import torch

from flow_core.datasets.toy2d import sample_toy2d
from flow_core.errors import FlowError
from flow_core.models.mlp import MLPVelocity
from flow_core.objectives.cfm import PARTNERS, ConditionalFlowMatching
from flow_core.prefetch import BatchStream, preparation_generator
from flow_core.protocols import BatchPreparer
from flow_core.testing import run_context
from flow_core.training import TrainSettings, train


def draw(generator):
    return {"x1": sample_toy2d("eight-gaussians", 64, generator)}


def labelled(generator):
    x1 = torch.randn(64, 3, generator=generator)
    return {"x1": x1, "cond": torch.randint(0, 4, (64,), generator=generator)}


def fit(tmp_path, objective, *, prefetch, steps=30, resume=False, batches=draw, model=None):
    torch.manual_seed(0)
    model = MLPVelocity(dim=2, hidden=32, depth=2) if model is None else model
    settings = TrainSettings(steps=steps, prefetch=prefetch, checkpoint_every=10, log_every=5)
    return train(run_context(tmp_path, resume=resume), model, objective, batches, settings)


@pytest.mark.parametrize("coupling", ["ot", "sinkhorn"])
def test_pairing_ahead_equals_pairing_in_the_step(tmp_path, coupling):
    objective = ConditionalFlowMatching(coupling=coupling)
    ahead = fit(tmp_path / "ahead", objective, prefetch=True)
    inline = fit(tmp_path / "inline", objective, prefetch=False)
    for a, b in zip(ahead.model.parameters(), inline.model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert ahead.metrics["loss"] == inline.metrics["loss"]
    log_ahead = (tmp_path / "ahead" / "metrics.jsonl").read_text()
    assert log_ahead == (tmp_path / "inline" / "metrics.jsonl").read_text()


@pytest.mark.parametrize("coupling", ["ot", "sinkhorn"])
def test_pairing_ahead_across_a_resume_equals_pairing_in_the_step(tmp_path, coupling):
    objective = ConditionalFlowMatching(coupling=coupling)
    inline = fit(tmp_path / "inline", objective, prefetch=False, steps=40)

    class Killed(ConditionalFlowMatching):
        calls = 0

        def __call__(self, model, batch):
            Killed.calls += 1
            if Killed.calls == 25:  # batch 26 is being paired in the background
                raise KeyboardInterrupt
            return super().__call__(model, batch)

    with pytest.raises(KeyboardInterrupt):  # checkpoints at 10 and 20, then killed
        fit(tmp_path / "split", Killed(coupling=coupling), prefetch=True, steps=40)
    resumed = fit(tmp_path / "split", objective, prefetch=True, steps=40, resume=True)
    for a, b in zip(inline.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert resumed.metrics["loss"] == inline.metrics["loss"]


def test_the_preparation_runs_on_another_thread_one_step_ahead():
    seen = []

    class Recording(ConditionalFlowMatching):
        def prepare_batch(self, batch, generator):
            seen.append(threading.current_thread().name)
            return super().prepare_batch(batch, generator)

    generator = torch.Generator().manual_seed(0)
    stream = BatchStream(
        draw,
        generator,
        lambda b: b,
        Recording(coupling="ot"),
        device=torch.device("cpu"),
        seed=0,
        rank=0,
        stage="",
        ahead=True,
    )
    try:
        first = stream.take(1, 3)
        before_second = stream.data_state()
        # the data generator has already drawn batch 2, but a checkpoint now must save
        # the state from which batch 2 is drawn
        assert not torch.equal(before_second, generator.get_state())
        replay = torch.Generator()
        replay.set_state(before_second)
        second = stream.take(2, 3)
        third = stream.take(3, 3)
        assert stream.data_state().equal(generator.get_state())  # nothing pending after 3
    finally:
        stream.close()
    assert PARTNERS in first and PARTNERS in second and PARTNERS in third
    assert seen[0] == threading.main_thread().name  # nothing to overlap with at step 1
    assert all(name.startswith("flow-prepare") for name in seen[1:])
    assert torch.equal(
        torch.sort(second["x1"], dim=0).values, torch.sort(draw(replay)["x1"], dim=0).values
    )


def test_prepared_batch_is_an_optimal_within_class_pairing():
    objective = ConditionalFlowMatching(coupling="ot")
    batch = labelled(torch.Generator().manual_seed(3))
    prepared = objective.prepare_batch(
        batch, preparation_generator(0, 0, "", 1, torch.device("cpu"))
    )
    partners = prepared[PARTNERS]
    assert torch.equal(torch.sort(partners).values, torch.arange(64))
    assert torch.equal(batch["cond"][partners], batch["cond"])  # labels stay attached
    assert torch.equal(prepared["x1"], batch["x1"][partners])
    cost = (prepared["x0"] - prepared["x1"]).square().sum()
    assert cost <= (prepared["x0"] - batch["x1"]).square().sum()
    assert isinstance(objective, BatchPreparer)


def test_independent_coupling_prepares_nothing_and_bad_batches_are_named():
    batch = draw(torch.Generator().manual_seed(0))
    generator = preparation_generator(0, 0, "", 1, torch.device("cpu"))
    assert ConditionalFlowMatching().prepare_batch(batch, generator) is batch
    with pytest.raises(FlowError, match="needs key 'x1'"):
        ConditionalFlowMatching(coupling="ot").prepare_batch({"x": batch["x1"]}, generator)


def test_preparation_generators_differ_by_step_stage_and_rank():
    cpu = torch.device("cpu")
    draws = {
        key: torch.randn(4, generator=preparation_generator(*key, cpu))
        for key in [
            (0, 0, "", 1),
            (0, 0, "", 2),
            (0, 0, "student", 1),
            (0, 1, "", 1),
            (1, 0, "", 1),
        ]
    }
    values = list(draws.values())
    assert all(not torch.equal(a, b) for i, a in enumerate(values) for b in values[i + 1 :])
    again = torch.randn(4, generator=preparation_generator(0, 0, "", 1, cpu))
    assert torch.equal(again, draws[(0, 0, "", 1)])


def test_an_error_in_the_background_preparation_reaches_the_caller(tmp_path):
    class Broken(ConditionalFlowMatching):
        def prepare_batch(self, batch, generator):
            if threading.current_thread() is not threading.main_thread():
                raise FlowError("pairing failed")
            return super().prepare_batch(batch, generator)

    with pytest.raises(FlowError, match="pairing failed"):
        fit(tmp_path, Broken(coupling="ot"), prefetch=True)
    assert not any(t.name.startswith("flow-prepare") for t in threading.enumerate())
