"""Invertible rescaling (images.rescale): Haar split, invertibility, the loss, a run."""

import numpy as np
import pytest
import torch

from flow_core.errors import ConfigError, FlowError
from flow_core.evaluation import evaluate_run
from flow_core.testing import run_task
from flow_images.data import load_dataset
from flow_images.rescale import (
    InvertibleRescaler,
    RescaleObjective,
    haar_merge,
    haar_split,
    quantize,
)
from flow_images.tasks.rescale import bicubic_baseline


def _perturbed(model):
    """Random weights everywhere (the zero-initialised last convs would make f the Haar split)."""
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(0.3 * torch.randn(parameter.shape, generator=generator))
    return model


def _images(n=3, size=16, dtype=torch.float32):
    generator = torch.Generator().manual_seed(0)
    return (torch.rand(n, 3, size, size, generator=generator) * 2 - 1).to(dtype)


def test_haar_split_is_the_two_by_two_average_and_inverts():
    x = _images()
    bands = haar_split(x)
    assert bands.shape == (3, 12, 8, 8)
    assert torch.allclose(bands[:, :3], torch.nn.functional.avg_pool2d(x, 2), atol=1e-6)
    assert torch.allclose(haar_merge(bands), x, atol=1e-6)
    with pytest.raises(FlowError, match="even H, W"):
        haar_split(torch.zeros(1, 3, 5, 5))


@pytest.mark.parametrize(("scale", "dual"), [(2, 0), (4, 0), (2, 2), (4, 3)])
def test_rescaler_is_invertible_to_1e5(scale, dual):
    model = _perturbed(InvertibleRescaler(3, scale, blocks=2, hidden=8, dual_channels=dual))
    model = model.double()  # exactness of the bijection, free of float32 round-off
    x = _images(dtype=torch.float64)
    z_d = model.sample_dual(x, torch.Generator().manual_seed(1))
    y, z = model(x, z_d)
    assert y.shape == (3, 3, 16 // scale, 16 // scale)
    assert z.shape == (3, 3 * scale * scale - 3 + dual, 16 // scale, 16 // scale)
    back, recovered = model.inverse(y, z)
    assert (back - x).abs().max() < 1e-5
    assert (y - torch.nn.functional.avg_pool2d(x, scale)).abs().max() > 0.1  # not the identity
    if dual:
        assert (recovered - z_d).abs().max() < 1e-5
        other, _ = model(x, model.sample_dual(x, torch.Generator().manual_seed(2)))
        assert (other - y).abs().max() > 1e-3  # the LR image varies with z_d
    else:
        assert recovered is None


def test_rescaler_refuses_bad_shapes():
    model = InvertibleRescaler(3, 4, blocks=1, hidden=4, dual_channels=2)
    with pytest.raises(FlowError, match="divisible by 4"):
        model(torch.zeros(1, 3, 18, 18))
    with pytest.raises(FlowError, match="z_d must have shape"):
        model(torch.zeros(1, 3, 16, 16))
    with pytest.raises(ConfigError, match="scale must be one of"):
        InvertibleRescaler(3, 3)


def test_quantize_rounds_to_8_bits_with_a_straight_through_gradient():
    y = torch.tensor([0.0011, -0.5, 0.9999, 1.7], requires_grad=True)
    q = quantize(y)
    assert torch.allclose((q + 1) * 127.5, ((q + 1) * 127.5).round(), atol=1e-4)
    q.sum().backward()
    assert torch.equal(y.grad, torch.ones(4))


def test_objective_of_the_untrained_network():
    """At initialisation y is the Haar average and z the detail bands: the LR term is the
    gap between box and bicubic downscaling and the latent term is ||detail||^2 / 2."""
    model = InvertibleRescaler(3, 2, blocks=1, hidden=4)
    x = _images()
    loss, metrics = RescaleObjective(lr_weight=0, hr_weight=0, z_weight=1)(model, {"x1": x})
    detail = haar_split(x)[:, 3:]
    assert torch.isclose(loss, detail.pow(2).sum() / (2 * 3), rtol=1e-5)
    assert metrics["lr_mse"] > 0


def test_rescale_runs_end_to_end(tmp_path):
    options = {
        "steps": 3,
        "batch_size": 4,
        "blocks": 1,
        "hidden": 8,
        "eval_samples": 16,
        "dual_channels": 2,
        "scale": 4,
        "checkpoint_every": 0,
        "log_every": 1,
    }
    metrics = run_task("images.rescale", tmp_path / "run", options)
    assert metrics["max_inverse_error"] < 1e-4
    for key in ("psnr_up", "psnr_up_bicubic", "psnr_lr", "ssim_up", "ssim_lr", "lr_spread"):
        assert key in metrics
    assert (tmp_path / "run" / "figures" / "rescaling.png").stat().st_size > 0
    folder, _ = evaluate_run(
        tmp_path / "run", mode="sample", count=5, device="cpu", show_progress=False
    )
    images = torch.from_numpy(np.load(folder / "images.npy"))
    assert torch.equal(images, load_dataset("patches", "test").images[:5])
    downscaled = np.load(folder / "downscaled.npy")
    assert downscaled.shape == (5, 3, 8, 8)
    levels = (downscaled + 1) * 127.5  # 8-bit images
    assert np.abs(levels - levels.round()).max() < 1e-3
    assert np.load(folder / "upscaled.npy").shape == (5, 3, 32, 32)
    expected = bicubic_baseline(images, 4)[1].numpy()
    assert np.allclose(np.load(folder / "bicubic.npy"), expected)
    with pytest.raises(ConfigError, match="held-out test split holds"):
        evaluate_run(tmp_path / "run", mode="sample", count=10**6, show_progress=False)
