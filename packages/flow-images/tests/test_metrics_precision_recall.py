import pytest
import torch

from flow_core.errors import ConfigError, FlowError
from flow_images.metrics import precision_recall


def test_identical_sets_give_one_one():
    a = torch.randn(200, 8, generator=torch.Generator().manual_seed(0))
    assert precision_recall(a, a.clone()) == (1.0, 1.0)


def test_disjoint_far_sets_give_zero_zero():
    a = torch.randn(200, 8, generator=torch.Generator().manual_seed(0))
    assert precision_recall(a, a + 100.0) == (0.0, 0.0)


def test_hand_made_line():
    real = torch.arange(10.0).unsqueeze(1)  # k=1 radii are all 1
    fake = torch.tensor([[0.5], [9.9], [-0.9], [20.0], [11.0]])  # three inside, two outside
    precision, recall = precision_recall(real, fake, k=1)
    assert precision == pytest.approx(3 / 5)
    # fake 1-NN radii: -0.9 -> 1.4, 0.5 -> 1.4, 9.9 -> 1.1, 11 -> 1.1, 20 -> 9;
    # they cover the real points 0, 1 (ball of 0.5) and 9 (ball of 9.9) only
    assert recall == pytest.approx(3 / 10)


def test_mode_dropping_lowers_recall_not_precision():
    gen = torch.Generator().manual_seed(1)
    real = torch.cat([torch.randn(300, 2, generator=gen), torch.randn(300, 2, generator=gen) + 20])
    fake = torch.randn(300, 2, generator=gen)  # only the first mode
    precision, recall = precision_recall(real, fake)
    assert precision > 0.9 and 0.4 < recall < 0.55


def test_precision_recall_errors():
    a = torch.randn(10, 2)
    with pytest.raises(ConfigError, match="k must be >= 1"):
        precision_recall(a, a, k=0)
    with pytest.raises(FlowError, match="at least 4 rows"):
        precision_recall(a, a[:3])
    with pytest.raises(FlowError, match=r"\(n, D\)"):
        precision_recall(a, torch.randn(10, 3))
