import math

import pytest
import torch

from flow_core.errors import FlowError
from flow_images.metrics import psnr, ssim


def test_psnr_identical_is_infinite():
    a = torch.rand(3, 3, 16, 16) * 2 - 1
    assert psnr(a, a.clone()) == math.inf


def test_psnr_known_mse():
    a = torch.zeros(2, 1, 8, 8)
    b = a + 0.1  # MSE 0.01, data range 2 -> 10 log10(4 / 0.01)
    assert psnr(a, b) == pytest.approx(10 * math.log10(400.0), rel=1e-6)
    assert psnr(a[0], b[0]) == pytest.approx(10 * math.log10(400.0), rel=1e-6)


def test_psnr_is_the_mean_over_images():
    a = torch.zeros(2, 1, 4, 4)
    b = torch.stack([torch.full((1, 4, 4), 0.1), torch.full((1, 4, 4), 0.2)])
    expected = (10 * math.log10(4 / 0.01) + 10 * math.log10(4 / 0.04)) / 2
    assert psnr(a, b) == pytest.approx(expected, rel=1e-6)


def test_ssim_identical_is_one_and_noise_lowers_it():
    gen = torch.Generator().manual_seed(0)
    a = torch.rand(4, 3, 16, 16, generator=gen) * 2 - 1
    assert ssim(a, a.clone()) == pytest.approx(1.0)
    values = [ssim(a, a + s * torch.randn(a.shape, generator=gen)) for s in (0.05, 0.2, 0.8)]
    assert 1.0 > values[0] > values[1] > values[2]
    assert ssim(a, a + 0.2) == pytest.approx(ssim(a + 0.2, a), rel=1e-9)


def test_reference_metric_errors():
    a = torch.zeros(2, 1, 8, 8)
    with pytest.raises(FlowError, match="equal shapes"):
        psnr(a, torch.zeros(2, 1, 8, 9))
    with pytest.raises(FlowError, match="at least 7"):
        ssim(torch.zeros(1, 1, 6, 6), torch.zeros(1, 1, 6, 6))
    with pytest.raises(FlowError, match="NaN"):
        psnr(a, torch.full((2, 1, 8, 8), float("nan")))
