"""images.tarflow and images.starflow end to end, and ``flow sample`` on a finished run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy
import pytest

from flow_core.errors import ConfigError
from flow_core.evaluation import evaluate_run
from flow_core.testing import run_task
from flow_images.tasks.starflow import STARFlowConfig

TINY = {
    "steps": 4,
    "batch_size": 16,
    "width": 16,
    "heads": 2,
    "eval_samples": 20,
    "bpd_repeats": 1,
    "checkpoint_every": 0,
    "log_every": 2,
}


def _finished(path: Path, metrics: dict[str, float], figures: tuple[str, ...]) -> None:
    assert json.loads((path / "metrics.json").read_text()) == metrics
    assert json.loads((path / "status.json").read_text())["state"] == "finished"
    for figure in figures:
        assert (path / "figures" / figure).stat().st_size > 0
    assert all(isinstance(v, float) for v in metrics.values())


def test_tarflow_gaussian_noise_with_guidance_and_sample(tmp_path: Path) -> None:
    run = tmp_path / "run"
    metrics = run_task("images.tarflow", run, {**TINY, "depth": 1, "blocks": 2})
    _finished(run, metrics, ("samples.png", "samples_raw.png"))
    for key in ("test_bits_per_dim", "fd_raw", "fd", "fd_floor", "accuracy", "precision"):
        assert key in metrics
    assert metrics["fd"] != metrics["fd_raw"]  # the denoising step moved the samples
    assert metrics["fd_floor"] < metrics["fd"]  # 4 steps are far from the data
    folder, _ = evaluate_run(run, mode="sample", count=12, device="cpu", show_progress=False)
    images = numpy.load(folder / "images.npy")
    assert images.shape == (12, 1, 8, 8) and numpy.abs(images).max() <= 1.0
    assert numpy.array_equal(numpy.load(folder / "labels.npy"), numpy.arange(12) % 10)
    assert (folder / "figures" / "samples.png").stat().st_size > 0


def test_tarflow_uniform_dequantisation_and_gs_jacobi(tmp_path: Path) -> None:
    options = {**TINY, "depth": 1, "blocks": 2, "noise": "uniform", "sampler": "gs-jacobi"}
    metrics = run_task("images.tarflow", tmp_path / "run", options)
    # the discrete bound is the continuous one plus -log2(1/8) = 3 bits
    assert metrics["test_bits_per_dim_discrete"] == pytest.approx(
        metrics["test_bits_per_dim"] + 3.0
    )
    assert "fd_raw" in metrics and "jacobi_iterations_block0" in metrics
    assert 1 <= metrics["jacobi_iterations_block1"] <= 15


def test_starflow_latent_stages(tmp_path: Path) -> None:
    options = {
        **TINY,
        "deep_depth": 2,
        "blocks": 2,
        "autoencoder_steps": 3,
        "decoder_steps": 2,
    }
    run = tmp_path / "run"
    metrics = run_task("images.starflow", run, options)
    _finished(run, metrics, ("samples.png",))
    assert "fd_raw" not in metrics and "test_bits_per_dim_discrete" not in metrics
    for stage in ("autoencoder", "decoder"):
        assert (run / "checkpoints" / stage).is_dir()


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ConfigError, match="guidance_rule must be one of linear, gaussian"):
        STARFlowConfig(guidance_rule="cubic")
    with pytest.raises(ConfigError, match="noise must be 'gaussian'"):
        STARFlowConfig(noise="uniform")
    with pytest.raises(ConfigError, match="dataset must be one of digits, patches"):
        STARFlowConfig(dataset="mnist")
