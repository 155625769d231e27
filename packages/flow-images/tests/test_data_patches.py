import numpy as np
import pytest
import torch

from flow_core.errors import ConfigError
from flow_images.data import load_dataset
from flow_images.data.patches import (
    TEST_PHOTOGRAPHS,
    TRAIN_PHOTOGRAPHS,
    grid_patches,
    photograph,
    pyramid,
)


@pytest.fixture(scope="module")
def splits():
    return load_dataset("patches", "train"), load_dataset("patches", "test")


def test_patches_shapes_and_range(splits):
    for data in splits:
        assert data.images.shape[1:] == (3, 32, 32)
        assert data.images.dtype == torch.float32
        assert data.images.min() >= -1.0 and data.images.max() <= 1.0
        assert data.labels is None and data.num_classes == 0 and data.class_names == ()
        assert data.sources is not None and data.sources.shape == (len(data),)
    train, test = splits
    assert len(train) > 1500 and len(test) > 500


def test_patches_split_by_source_photograph(splits):
    train, test = splits
    assert train.source_names == TRAIN_PHOTOGRAPHS and test.source_names == TEST_PHOTOGRAPHS
    assert not set(TRAIN_PHOTOGRAPHS) & set(TEST_PHOTOGRAPHS)
    for data in splits:
        assert set(data.sources.tolist()) == set(range(len(data.source_names)))
    # no patch of a test photograph appears among the training patches
    train_keys = {p.numpy().tobytes() for p in train.images}
    assert not any(p.numpy().tobytes() in train_keys for p in test.images)


def test_every_photograph_ships_offline():
    for name in TRAIN_PHOTOGRAPHS + TEST_PHOTOGRAPHS:
        image = photograph(name)
        assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
        levels = pyramid(name)
        assert [min(level.shape[:2]) for level in levels] == [256, 128, 64]


def test_grid_patches_cuts_the_right_windows():
    image = np.arange(40 * 48 * 3, dtype=np.int64).reshape(40, 48, 3) % 256
    image = image.astype(np.uint8)
    patches = grid_patches(image, size=32, stride=16)
    assert patches.shape == (1 * 2, 3, 32, 32)
    expected = image[0:32, 16:48].transpose(2, 0, 1).astype(np.float32) / 127.5 - 1
    np.testing.assert_array_equal(patches[1], expected)
    assert grid_patches(image[:20], size=32).shape == (0, 3, 32, 32)


def test_patches_reject_other_sizes():
    with pytest.raises(ConfigError, match="size 32"):
        load_dataset("patches", "test", size=64)
