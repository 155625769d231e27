import pytest
import torch

from flow_core.errors import ConfigError, FlowError
from flow_images.data import load_dataset
from flow_images.data.patches import held_out_regions
from flow_images.features import FeatureNet, feature_net_info, load_feature_net
from flow_images.features.weights import weights_path

# the bars the shipped networks must clear on their held-out data, recomputed from the weights
DIGITS_BAR = 0.95
PATCHES_BAR = 0.80


def test_digits_net_test_accuracy_from_shipped_weights():
    net = load_feature_net("digits")
    test = load_dataset("digits", "test")
    accuracy = float((net.predict(test.images) == test.labels).float().mean())
    assert accuracy >= DIGITS_BAR
    assert accuracy == pytest.approx(feature_net_info("digits")["test_accuracy"], abs=1e-6)


def test_patches_net_held_out_accuracy_from_shipped_weights():
    net = load_feature_net("patches")
    _, _, x_out, y_out = held_out_regions()
    accuracy = float((net.predict(x_out) == y_out).float().mean())
    assert accuracy >= PATCHES_BAR
    info = feature_net_info("patches")
    assert accuracy == pytest.approx(info["test_accuracy"], abs=1e-6)
    assert info["test_size"] == len(x_out)


@pytest.mark.parametrize(
    ("name", "shape", "classes"), [("digits", (1, 8, 8), 10), ("patches", (3, 32, 32), 6)]
)
def test_shipped_nets_are_frozen_small_and_described(name, shape, classes):
    net = load_feature_net(name)
    assert not net.training
    assert not any(p.requires_grad for p in net.parameters())
    assert net.num_classes == classes and net.in_channels == shape[0]
    x = torch.zeros(5, *shape)
    assert net.features(x).shape == (5, net.feature_dim)
    assert net(x).shape == (5, classes)
    assert weights_path(name).stat().st_size < 1024 * 1024
    info = feature_net_info(name)
    for key in ("test_accuracy", "train_accuracy", "epochs", "seed", "objective", "test_split"):
        assert key in info


def test_patches_net_runs_on_other_sizes():
    # the folder dataset uses the patches network on resized RGB images of any size >= 4
    net = load_feature_net("patches")
    assert net.features(torch.zeros(2, 3, 48, 48)).shape == (2, net.feature_dim)


def test_feature_net_errors():
    with pytest.raises(ConfigError, match="accepted: digits, patches"):
        load_feature_net("inception")
    net = load_feature_net("digits")
    with pytest.raises(FlowError, match=r"expected images \(N, 1, H, W\)"):
        net.features(torch.zeros(2, 3, 8, 8))
    with pytest.raises(FlowError, match="too small"):
        load_feature_net("patches").features(torch.zeros(2, 3, 2, 2))
    with pytest.raises(ConfigError, match="num_classes >= 2"):
        FeatureNet(1, 1, (8,))
