import itertools

import pytest
import torch
import torch.nn.functional as F

from flow_core.errors import FlowError
from flow_images.data import load_dataset
from flow_images.data.patches import held_out_regions
from flow_images.features import load_feature_net
from flow_images.metrics import ImageEvaluator


@pytest.fixture(scope="module")
def digits():
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    evaluator = ImageEvaluator(load_feature_net("digits"), test.images, train=train.images)
    return train, test, evaluator


def test_floor_is_the_train_vs_test_distance(digits):
    train, test, evaluator = digits
    assert evaluator.floor is not None and evaluator.floor > 0
    # the same number is what evaluate() gives for the fixed-seed subset of training images
    subset = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[: len(test)]
    assert evaluator.evaluate(train.images[subset])["fd"] == pytest.approx(evaluator.floor)
    assert ImageEvaluator(evaluator.net, test.images).floor is None


def test_floor_size_sets_the_number_of_training_images(digits):
    train, test, evaluator = digits
    larger = ImageEvaluator(evaluator.net, test.images, train=train.images, floor_size=1000)
    subset = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:1000]
    assert larger.evaluate(train.images[subset])["fd"] == pytest.approx(larger.floor)
    # FD's small-set bias: a floor over 1000 training images is well below one over 360
    assert larger.floor < 0.5 * evaluator.floor
    everything = ImageEvaluator(evaluator.net, test.images, train=train.images, floor_size=5000)
    assert everything.floor == pytest.approx(larger.evaluate(train.images)["fd"])
    with pytest.raises(FlowError, match="floor_size"):
        ImageEvaluator(evaluator.net, test.images, train=train.images, floor_size=1)


def test_fd_grows_monotonically_with_noise(digits):
    train, _, evaluator = digits
    gen = torch.Generator().manual_seed(1)
    samples = train.images[:360]
    noise = torch.randn(samples.shape, generator=gen)
    fds = [evaluator.evaluate(samples + s * noise)["fd"] for s in (0.0, 0.1, 0.2, 0.4, 0.8)]
    assert all(a < b for a, b in itertools.pairwise(fds)), fds
    assert fds[-1] > 10 * evaluator.floor


def test_evaluate_keys_precision_recall_and_accuracy(digits):
    train, _, evaluator = digits
    result = evaluator.evaluate(train.images[:360], train.labels[:360])
    assert set(result) == {"fd", "precision", "recall", "accuracy"}
    assert result["accuracy"] > 0.95 and result["precision"] > 0.8 and result["recall"] > 0.8
    wrong = evaluator.evaluate(train.images[:360], (train.labels[:360] + 1) % 10)
    assert wrong["accuracy"] < 0.05
    # noise samples: far from the data manifold
    noise = torch.rand(360, 1, 8, 8, generator=torch.Generator().manual_seed(2)) * 2 - 1
    bad = evaluator.evaluate(noise)
    assert bad["precision"] < 0.2 and bad["recall"] < 0.2 and "accuracy" not in bad
    assert bad["fd"] > 50 * evaluator.floor


def test_collapsed_samples_lose_recall(digits):
    train, _, evaluator = digits
    ones = train.images[train.labels == 1][:36].repeat(10, 1, 1, 1)
    result = evaluator.evaluate(ones)
    assert result["recall"] < 0.3 and result["fd"] > 5 * evaluator.floor


def test_evaluator_input_errors(digits):
    _, test, evaluator = digits
    with pytest.raises(FlowError, match=r"\(N, 1, 8, 8\)"):
        evaluator.evaluate(torch.zeros(10, 1, 16, 16))
    with pytest.raises(FlowError, match=r"\(N, C, H, W\)"):
        evaluator.evaluate(torch.zeros(10, 8, 8))
    bad = test.images[:10].clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(FlowError, match="NaN"):
        evaluator.evaluate(bad)
    with pytest.raises(FlowError, match="labels must lie in"):
        evaluator.evaluate(test.images[:10], torch.full((10,), 10))
    with pytest.raises(FlowError, match="LongTensor of shape"):
        evaluator.evaluate(test.images[:10], torch.zeros(10))
    with pytest.raises(FlowError, match="takes 1 channel"):
        ImageEvaluator(evaluator.net, torch.zeros(10, 3, 8, 8))
    with pytest.raises(FlowError, match="more than 3"):
        evaluator.evaluate(test.images[:3])


def test_patch_fd_detects_noise_and_blur_against_unseen_regions():
    # reference: patches of regions the feature net never saw; samples: the other regions
    x_fit, _, x_out, _ = held_out_regions()
    evaluator = ImageEvaluator(load_feature_net("patches"), x_out)
    gen = torch.Generator().manual_seed(3)
    samples = x_fit[torch.randperm(len(x_fit), generator=gen)[: len(x_out)]]
    noise = torch.randn(samples.shape, generator=gen)
    blurred = F.avg_pool2d(F.pad(samples, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    clean = evaluator.evaluate(samples)["fd"]
    noisy = [evaluator.evaluate((samples + s * noise).clamp(-1, 1))["fd"] for s in (0.1, 0.3)]
    assert clean < noisy[0] < noisy[1]
    assert evaluator.evaluate(blurred)["fd"] > 1.5 * clean
