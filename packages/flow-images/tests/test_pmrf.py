"""PMRF (images.restore): degradations, the restorer, the stages' data, end-to-end runs."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from flow_core.errors import ConfigError, FlowError
from flow_core.evaluation import evaluate_run
from flow_core.testing import run_task
from flow_images.data import load_dataset
from flow_images.data.folder import read_folder
from flow_images.pmrf import ConvRestorer, Degradation, ObservationConditioned, read_mask
from flow_images.pmrf.stages import flow_batches

TINY = {
    "steps": 4,
    "restorer_steps": 4,
    "base_channels": 8,
    "restorer_width": 8,
    "restorer_depth": 1,
    "eval_samples": 24,
    "sample_steps": 2,
    "batch_size": 8,
    "checkpoint_every": 0,
    "log_every": 2,
}


def _images(n=5, channels=1, size=8):
    return torch.rand(n, channels, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1


def test_denoise_adds_noise_of_the_given_scale():
    x = torch.zeros(2000, 1, 8, 8)
    degraded, observation = Degradation("denoise", 1, 8, noise_std=0.3)(
        x, torch.Generator().manual_seed(1)
    )
    assert observation is degraded
    assert abs(float(degraded.std()) - 0.3) < 0.01


def test_sr2x_averages_two_by_two_blocks():
    x = _images()
    degraded, _ = Degradation("sr2x", 1, 8)(x, torch.Generator())
    expected = x[:, :, :2, :2].mean(dim=(2, 3))
    assert torch.allclose(degraded[:, :, 0, 0], expected)
    assert torch.allclose(degraded[:, :, 1, 1], expected)
    assert not torch.allclose(degraded, x)


def test_inpaint_masks_holes_and_passes_the_mask():
    x = _images(channels=3)
    degraded, observation = Degradation("inpaint", 3, 8, hole_fraction=0.5)(
        x, torch.Generator().manual_seed(0)
    )
    mask = observation[:, 3:]
    assert observation.shape == (5, 4, 8, 8)
    assert set(mask.unique().tolist()) == {0.0, 1.0}
    assert torch.all(mask.sum(dim=(1, 2, 3)) == 64 - 16)  # a 4x4 hole in each image
    assert torch.equal(degraded, x * mask)


def test_mask_file_of_another_size_is_refused(tmp_path):
    path = tmp_path / "mask.png"
    Image.fromarray(np.full((6, 6), 255, dtype=np.uint8)).save(path)
    with pytest.raises(ConfigError, match="6x6 pixels but the images are 8x8"):
        read_mask(str(path), 8)
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(path)
    with pytest.raises(ConfigError, match="no pixel is observed"):
        read_mask(str(path), 8)
    with pytest.raises(ConfigError, match="cannot be read"):
        read_mask(str(tmp_path / "missing.png"), 8)


def test_mismatched_image_sizes_are_refused():
    with pytest.raises(FlowError, match=r"images must be \(N, 1, 8, 8\)"):
        Degradation("denoise", 1, 8)(torch.zeros(2, 1, 16, 16), torch.Generator())
    with pytest.raises(ConfigError, match="even image size"):
        Degradation("sr2x", 1, 7)
    with pytest.raises(ConfigError, match="mask is"):
        Degradation("inpaint", 1, 8, mask=torch.ones(4, 4))
    with pytest.raises(ConfigError, match="unknown degradation 'blur'"):
        Degradation("blur", 1, 8)


def test_untrained_restorer_is_the_identity_on_the_image_channels():
    y = _images(channels=2)
    restorer = ConvRestorer(2, 1, width=8, depth=1)
    assert torch.equal(restorer(y), y[:, :1])
    with pytest.raises(FlowError, match="observations must be"):
        restorer(y[:, :1])


def test_flow_batches_start_at_restorer_output_plus_small_noise():
    x = _images(n=50)
    restorer = ConvRestorer(1, 1, width=8, depth=1)  # the identity: f(y) = y
    degrade = Degradation("sr2x", 1, 8)
    batch = flow_batches(x, degrade, 400, restorer, 0.1)(torch.Generator().manual_seed(0))
    down, _ = degrade(batch["x1"], torch.Generator())
    assert abs(float((batch["x0"] - down).std()) - 0.1) < 0.01


class _Pointwise(torch.nn.Module):
    """A tiny network v(x, t) = conv(x) for the test."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 1)

    def forward(self, x, t):
        return self.conv(x)


def test_observation_conditioned_field_checks_its_condition():
    field = ObservationConditioned(_Pointwise(), 1)
    x, y = torch.zeros(2, 1, 8, 8), torch.zeros(2, 2, 8, 8)
    assert field(x, torch.zeros(2), y).shape == (2, 1, 8, 8)
    with pytest.raises(FlowError, match="observation must be"):
        field(x, torch.zeros(2), None)


@pytest.mark.parametrize("degradation", ["denoise", "inpaint", "sr2x"])
def test_restore_runs_end_to_end(tmp_path, degradation):
    metrics = run_task("images.restore", tmp_path / "run", {**TINY, "degradation": degradation})
    for key in ("restorer", "pmrf", "posterior", "degraded"):
        assert np.isfinite(metrics[f"psnr_{key}"]) and np.isfinite(metrics[f"fd_{key}"])
        assert -1 <= metrics[f"ssim_{key}"] <= 1
    assert metrics["nfe"] == 2
    report = (tmp_path / "run" / "report.md").read_text()
    assert "restorations.png" in report and "PMRF" in report
    assert (tmp_path / "run" / "figures" / "restorations.png").stat().st_size > 0
    assert json.loads((tmp_path / "run" / "metrics.json").read_text()) == metrics


def test_restore_sample_restores_test_images_and_a_users_folder(tmp_path):
    run = tmp_path / "run"
    run_task("images.restore", run, {**TINY, "degradation": "inpaint", "posterior": "false"})
    folder, counts = evaluate_run(run, mode="sample", count=6, device="cpu", show_progress=False)
    assert counts == {f"{k}_count": 6.0 for k in ("clean", "degraded", "restorer", "pmrf")}
    clean = np.load(folder / "clean.npy")
    assert np.array_equal(clean, load_dataset("digits", "test").images[:6].numpy())
    degraded = np.load(folder / "degraded.npy")
    holes = degraded != clean  # inpainting: some pixels are hidden, the rest kept
    assert holes.any() and not holes.all()
    for name in ("restorer", "pmrf"):
        restored = np.load(folder / f"{name}.npy")
        assert restored.shape == (6, 1, 8, 8) and np.abs(restored).max() <= 1.0
    assert (folder / "figures" / "restorations.png").stat().st_size > 0

    mine = tmp_path / "mine"
    mine.mkdir()
    rng = np.random.default_rng(1)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (20, 20), dtype=np.uint8)).save(mine / f"{i}.png")
    overrides = [("sample_folder", str(mine))]
    folder, _ = evaluate_run(
        run, mode="sample", count=3, overrides=overrides, device="cpu", show_progress=False
    )
    assert np.array_equal(np.load(folder / "clean.npy"), read_folder(str(mine), 8, 1).numpy())
    with pytest.raises(ConfigError, match="holds only 3"):
        evaluate_run(run, mode="sample", count=4, overrides=overrides, show_progress=False)


def test_restore_on_a_folder_with_a_wrong_mask_is_refused(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    Image.fromarray(np.full((8, 8), 255, dtype=np.uint8)).save(tmp_path / "mask.png")
    options = {
        **TINY,
        "dataset": "folder",
        "folder": str(folder),
        "size": 16,
        "degradation": "inpaint",
        "mask": str(tmp_path / "mask.png"),
    }
    with pytest.raises(ConfigError, match="8x8 pixels but the images are 16x16"):
        run_task("images.restore", tmp_path / "run", options)
