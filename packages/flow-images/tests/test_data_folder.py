import numpy as np
import pytest
import torch
from PIL import Image

from flow_core.errors import ConfigError, FlowError
from flow_images.data import load_dataset


def _write(folder, count, size=(40, 24), suffix=".png"):
    rng = np.random.default_rng(0)
    for i in range(count):
        pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"img{i:02d}{suffix}")


def test_folder_split_shapes_and_range(tmp_path):
    _write(tmp_path, 8)
    (tmp_path / "sub").mkdir()
    Image.new("L", (10, 30), color=255).save(tmp_path / "sub" / "white.JPG")
    (tmp_path / "notes.txt").write_text("not an image")
    train = load_dataset("folder", "train", folder=str(tmp_path), size=16, channels=3)
    test = load_dataset("folder", "test", folder=str(tmp_path), size=16, channels=3)
    # 9 images sorted by relative path; positions 4 (img04) is a test image
    assert len(train) == 8 and len(test) == 1
    assert train.images.shape == (8, 3, 16, 16) and train.images.dtype == torch.float32
    assert train.images.min() >= -1 and train.images.max() <= 1
    assert train.labels is None and train.num_classes == 0 and train.name == "folder"
    grey = load_dataset("folder", "train", folder=str(tmp_path), size=8, channels=1)
    assert grey.images.shape == (8, 1, 8, 8)
    # the white image (last in sorted order) is in train and maps to exactly 1
    assert torch.all(grey.images[-1] == 1.0)


def test_folder_center_crop_keeps_the_middle(tmp_path):
    # a wide image: left and right thirds black, middle third white; centre crop keeps white
    pixels = np.zeros((30, 90, 3), dtype=np.uint8)
    pixels[:, 30:60] = 255
    for i in range(5):
        Image.fromarray(pixels).save(tmp_path / f"{i}.png")
    data = load_dataset("folder", "train", folder=str(tmp_path), size=10)
    assert data.images.shape == (4, 3, 10, 10)
    assert data.images[:, :, :, 2:8].min() > 0.9


def test_folder_split_is_deterministic(tmp_path):
    _write(tmp_path, 11)
    a = load_dataset("folder", "test", folder=str(tmp_path))
    b = load_dataset("folder", "test", folder=str(tmp_path))
    assert len(a) == 2 and torch.equal(a.images, b.images)
    assert a.images.shape[2:] == (32, 32)


def test_folder_errors(tmp_path):
    with pytest.raises(FlowError, match="does not exist"):
        load_dataset("folder", "train", folder=str(tmp_path / "missing"))
    with pytest.raises(FlowError, match="has no images"):
        load_dataset("folder", "train", folder=str(tmp_path))
    _write(tmp_path, 3)
    with pytest.raises(FlowError, match="has 3 images; at least 5"):
        load_dataset("folder", "train", folder=str(tmp_path))
    _write(tmp_path, 6)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(FlowError, match=r"cannot read image .*broken\.png"):
        load_dataset("folder", "train", folder=str(tmp_path))
    with pytest.raises(ConfigError, match="folder="):
        load_dataset("folder", "train")
    with pytest.raises(ConfigError, match="channels must be 1 or 3"):
        load_dataset("folder", "train", folder=str(tmp_path), channels=4)
    with pytest.raises(ConfigError, match="size must be >= 1"):
        load_dataset("folder", "train", folder=str(tmp_path), size=0)
