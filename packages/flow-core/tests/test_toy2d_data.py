import math

import pytest
import torch

from flow_core.datasets import TOY2D_TARGETS, sample_toy2d
from flow_core.errors import ConfigError


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def test_target_names():
    assert TOY2D_TARGETS == ("eight-gaussians", "moons", "checkerboard", "circles", "swiss-roll")


@pytest.mark.parametrize("name", TOY2D_TARGETS)
def test_shape_scale_and_determinism(name):
    x = sample_toy2d(name, 4000, _gen(0))
    assert x.shape == (4000, 2) and x.dtype == torch.float32
    assert torch.isfinite(x).all()
    assert x.mean(0).abs().max() < 0.6
    assert ((x.std(0) > 0.5) & (x.std(0) < 2.0)).all()
    torch.testing.assert_close(sample_toy2d(name, 4000, _gen(0)), x, rtol=0, atol=0)
    assert not torch.equal(sample_toy2d(name, 4000, _gen(1)), x)
    assert sample_toy2d(name, 0, _gen(0)).shape == (0, 2)


@pytest.mark.parametrize("name", TOY2D_TARGETS)
def test_global_generator_when_none(name):
    torch.manual_seed(3)
    a = sample_toy2d(name, 50)
    torch.manual_seed(3)
    torch.testing.assert_close(sample_toy2d(name, 50), a, rtol=0, atol=0)


def test_eight_gaussians_modes():
    x = sample_toy2d("eight-gaussians", 8000, _gen(0))
    angle = torch.atan2(x[:, 1], x[:, 0])
    mode = torch.round(angle / (math.pi / 4)).remainder(8).long()
    centres = 2.0 * torch.stack([torch.cos(mode * math.pi / 4), torch.sin(mode * math.pi / 4)], 1)
    assert (x - centres).norm(dim=1).max() < 1.2
    counts = torch.bincount(mode, minlength=8)
    assert counts.min() > 800


def test_circles_radii():
    r = sample_toy2d("circles", 4000, _gen(0)).norm(dim=1)
    inner = r < 1.5
    assert 0.4 < inner.float().mean() < 0.6
    assert (r[inner] - 1.0).abs().max() < 0.3 and (r[~inner] - 2.0).abs().max() < 0.3


def test_checkerboard_dark_squares():
    x = sample_toy2d("checkerboard", 4000, _gen(0))
    assert x.min() >= -2.0 and x.max() <= 2.0
    cells = torch.floor(x + 2.0).long()
    assert ((cells[:, 0] + cells[:, 1]) % 2 == 0).all()


def test_unknown_name_lists_valid_names():
    with pytest.raises(ConfigError, match="valid names: eight-gaussians, moons"):
        sample_toy2d("spirals", 10)


def test_negative_size_raises():
    with pytest.raises(ConfigError, match="n must be >= 0"):
        sample_toy2d("moons", -1)
