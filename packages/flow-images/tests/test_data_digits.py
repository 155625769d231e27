import pytest
import torch

from flow_core.errors import ConfigError, FlowError
from flow_images.data import ImageData, load_dataset


def test_digits_shapes_ranges_and_classes():
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert train.images.shape == (1437, 1, 8, 8)
    assert test.images.shape == (360, 1, 8, 8)
    for data in (train, test):
        assert data.images.dtype == torch.float32
        assert data.images.min() == -1.0 and data.images.max() == 1.0
        assert data.labels is not None and data.labels.dtype == torch.long
        assert data.num_classes == 10 and data.class_names == tuple("0123456789")
        assert data.name == "digits"
        # stratified: every class appears, in proportions close to the whole set's
        counts = torch.bincount(data.labels, minlength=10).double() / len(data)
        assert (counts - 0.1).abs().max() < 0.02


def test_digits_split_is_fixed_and_disjoint():
    a, b = load_dataset("digits", "train"), load_dataset("digits", "train")
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    test = load_dataset("digits", "test")
    train_rows = {tuple(row.tolist()) for row in a.images.flatten(1)}
    test_rows = [tuple(row.tolist()) for row in test.images.flatten(1)]
    # sklearn's digits contain a handful of exact duplicates; the split itself never shares an index
    assert sum(row in train_rows for row in test_rows) <= 5
    assert len(a) + len(test) == 1797


def test_loaded_tensors_are_copies():
    a = load_dataset("digits", "test")
    a.images.zero_()
    assert load_dataset("digits", "test").images.max() == 1.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "mnist", "split": "train"}, "accepted: digits, patches, folder"),
        ({"name": "digits", "split": "valid"}, "accepted: train, test"),
        ({"name": "digits", "split": "train", "size": 16}, "size 8"),
        ({"name": "digits", "split": "train", "channels": 3}, "1 channel"),
        ({"name": "digits", "split": "train", "folder": "/tmp"}, "only to dataset 'folder'"),
    ],
)
def test_load_dataset_errors_name_accepted_values(kwargs, match):
    name, split = kwargs.pop("name"), kwargs.pop("split")
    with pytest.raises(ConfigError, match=match):
        load_dataset(name, split, **kwargs)


def test_image_data_validates_its_fields():
    with pytest.raises(FlowError, match="labels must be given exactly"):
        ImageData(torch.zeros(2, 1, 8, 8), None, 10, "x", tuple("0123456789"))
    with pytest.raises(FlowError, match=r"\(N, C, H, W\)"):
        ImageData(torch.zeros(2, 8, 8), None, 0, "x", ())
    with pytest.raises(FlowError, match="labels must have shape"):
        ImageData(torch.zeros(2, 1, 8, 8), torch.zeros(3, dtype=torch.long), 1, "x", ("a",))
