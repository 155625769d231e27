"""The validation part and the choice made on it: disjoint from the test split, lowest FD wins."""

import json

import numpy
import pytest
import torch

from flow_core.errors import ConfigError
from flow_core.evaluation import evaluate_run
from flow_core.testing import run_task
from flow_images.data import ImageData, load_dataset
from flow_images.data.validation import hold_out_validation

TINY = {
    "steps": 6,
    "base_channels": 8,
    "eval_samples": 40,
    "sample_steps": 4,
    "batch_size": 16,
    "nfe_sweep": "(1, 2, 4, 8)",
    "guidance_sweep": "(0, 2)",
    "checkpoint_every": 0,
}


def _numbered(n, labels=None, sources=None):
    """Images whose every pixel is their row number, to trace rows through a split."""
    images = torch.arange(n, dtype=torch.float32)[:, None, None, None].expand(n, 1, 2, 2)
    classes = 0 if labels is None else int(labels.max()) + 1
    return ImageData(
        images=images.clone(),
        labels=labels,
        num_classes=classes,
        name="numbered",
        class_names=tuple(str(c) for c in range(classes)),
        sources=sources,
        source_names=()
        if sources is None
        else tuple(str(s) for s in range(int(sources.max()) + 1)),
    )


def _rows(data):
    return set(data.images[:, 0, 0, 0].long().tolist())


def test_validation_part_partitions_the_training_split_by_class():
    labels = torch.arange(100) % 4
    fit, held = hold_out_validation(_numbered(100, labels), 0.2)
    assert _rows(fit).isdisjoint(_rows(held))
    assert _rows(fit) | _rows(held) == set(range(100))
    assert len(held) == 20
    assert torch.bincount(held.labels).tolist() == [5, 5, 5, 5]  # stratified
    assert torch.equal(held.labels, labels[held.images[:, 0, 0, 0].long()])
    again, _ = hold_out_validation(_numbered(100, labels), 0.2)
    assert _rows(again) == _rows(fit)  # the same part on every run


def test_validation_part_keeps_source_images_whole():
    sources = torch.arange(60) // 6  # ten source images, six patches each
    fit, held = hold_out_validation(_numbered(60, sources=sources), 0.2)
    assert set(fit.sources.tolist()).isdisjoint(set(held.sources.tolist()))
    assert len(held) == 12
    with pytest.raises(ConfigError, match="at least 2"):
        hold_out_validation(_numbered(6, sources=torch.zeros(6, dtype=torch.long)), 0.5)
    with pytest.raises(ConfigError, match="in \\(0, 1\\)"):
        hold_out_validation(_numbered(6), 0.0)


def test_planned_nfe_is_known_before_sampling_except_for_adaptive_samplers():
    from flow_core.samplers.adaptive import Dopri5
    from flow_core.samplers.average import FewStepAverageVelocity
    from flow_core.samplers.fixed_step import Euler, Heun
    from flow_images.choice import planned_nfe

    assert planned_nfe(Euler(steps=16)) == 16
    assert planned_nfe(Heun(steps=8)) == 16
    assert planned_nfe(FewStepAverageVelocity(steps=2)) == 2
    assert planned_nfe(Dopri5()) is None


def test_digits_validation_never_overlaps_the_test_split(monkeypatch, tmp_path):
    from flow_images.tasks import generation

    seen = {}
    evaluate = generation.evaluate_generation

    def record(ctx, config, model, kind, sampler, train, test, *args, **kwargs):
        seen.update(train=train, test=test, validation=kwargs["validation_data"])
        return evaluate(ctx, config, model, kind, sampler, train, test, *args, **kwargs)

    monkeypatch.setattr(generation, "evaluate_generation", record)
    run_task("images.digits", tmp_path / "run", {**TINY, "nfe_sweep": "()"})
    train, test, validation = seen["train"], seen["test"], seen["validation"]
    assert len(validation) + len(train) == len(load_dataset("digits", "train"))
    flat = {name: seen[name].images.flatten(1) for name in ("train", "test", "validation")}
    # no validation image is a test or training image (the digits hold no exact duplicates)
    assert torch.cdist(flat["validation"], flat["test"]).min() > 0
    assert torch.cdist(flat["validation"], flat["train"]).min() > 0
    assert len(test) == len(load_dataset("digits", "test"))


def test_the_lowest_validation_fd_within_the_nfe_budget_is_chosen_and_sampled(tmp_path):
    run = tmp_path / "run"
    metrics = run_task("images.digits", run, TINY)
    record = json.loads((run / "choice.json").read_text())
    scores = record["scores"]
    assert record["validation_images"] == 288
    assert all(s["nfe"] <= 4 for s in scores)  # the configured Euler's 4 NFE is the budget
    assert not any(s["sampler"] == "dopri5" for s in scores)  # adaptive: cost unknown ahead
    labels = [(s["label"], s["guidance_weight"]) for s in scores]
    # w in {1, 0, 2} x (the configured Euler 4 steps, Euler 1 and 2, Heun at 2 and 4 NFE): the
    # sweep's Euler 4 steps is the configured sampler again, and is not scored twice
    assert len(labels) == len(set(labels)) == 3 * 5
    best = min(scores, key=lambda s: s["fd"])
    assert record["chosen"]["guidance_weight"] == best["guidance_weight"]
    assert metrics["validation_fd"] == pytest.approx(best["fd"])
    assert metrics["chosen_guidance_weight"] == best["guidance_weight"]
    assert metrics["nfe"] == best["nfe"]
    assert metrics["fd_best_in_sweep"] <= metrics["fd"]
    report = (run / "report.md").read_text()
    assert "Chosen on the validation split" in report and "**chosen**" in report
    folder, _ = evaluate_run(run, mode="sample", count=10, device="cpu", show_progress=False)
    assert numpy.load(folder / "images.npy").shape == (10, 1, 8, 8)
    assert "as chosen on the validation split" in (folder / "report.md").read_text()


def test_the_choice_does_not_look_at_the_test_split(monkeypatch, tmp_path):
    from flow_images.tasks.digits import Digits

    options = {**TINY, "nfe_sweep": "(2,)", "guidance_sweep": "(0,)"}
    run_task("images.digits", tmp_path / "a", options)
    datasets = Digits.datasets

    def other_test_split(self, config):
        train, test = datasets(self, config)
        flipped = ImageData(-test.images, test.labels, 10, "digits", test.class_names)
        return train, flipped

    monkeypatch.setattr(Digits, "datasets", other_test_split)
    metrics = run_task("images.digits", tmp_path / "b", options)
    first = json.loads((tmp_path / "a" / "choice.json").read_text())
    second = json.loads((tmp_path / "b" / "choice.json").read_text())
    assert first == second
    assert metrics["fd"] != json.loads((tmp_path / "a" / "metrics.json").read_text())["fd"]
