"""The shared sinusoidal time embedding: its stated maximum frequency and its values."""

import math

import pytest
import torch

from flow_core.errors import ConfigError
from flow_core.models import AVERAGE_MAX_FREQUENCY, MAX_FREQUENCY, SinusoidalTimeEmbedding
from flow_core.registry import get_registry


def test_stated_maximum_frequency():
    assert MAX_FREQUENCY == 30.0
    assert AVERAGE_MAX_FREQUENCY == 10.0 <= MAX_FREQUENCY
    embedding = SinusoidalTimeEmbedding(16)
    assert embedding.max_frequency == MAX_FREQUENCY
    torch.testing.assert_close(embedding.frequencies[-1].item(), MAX_FREQUENCY)
    torch.testing.assert_close(embedding.frequencies[0].item(), 1.0)
    ratios = embedding.frequencies[1:] / embedding.frequencies[:-1]
    torch.testing.assert_close(ratios, torch.full_like(ratios, MAX_FREQUENCY ** (1 / 7)))


def test_values_at_the_ends_of_the_time_interval():
    embedding = SinusoidalTimeEmbedding(8, max_frequency=27.0)
    phi = embedding(torch.tensor([0.0, 1.0]))
    assert phi.shape == (2, 8)
    torch.testing.assert_close(phi[0], torch.tensor([0.0] * 4 + [1.0] * 4))
    omega = torch.tensor([1.0, 3.0, 9.0, 27.0])
    torch.testing.assert_close(phi[1], torch.cat([omega.sin(), omega.cos()]))
    assert embedding(torch.rand(5, dtype=torch.float64)).dtype == torch.float64


def test_no_fixed_state_in_checkpoints():
    assert SinusoidalTimeEmbedding(32).state_dict() == {}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"features": 7}, "even"), ({"features": 0}, "even"), ({"max_frequency": 0.5}, ">= 1")],
)
def test_bad_config_raises(kwargs, match):
    with pytest.raises(ConfigError, match=f"net: .*{match}"):
        SinusoidalTimeEmbedding(**{"features": 8, **kwargs, "kind": "net"})


def test_no_registered_network_exceeds_the_stated_maximum():
    """Every registered flow built with its defaults: its time embeddings are the shared one,
    at most :data:`MAX_FREQUENCY`, and no other module holds sinusoid frequencies."""
    embedded = []
    for entry in get_registry().entries("flow"):
        model = entry.load()()
        found = [m for m in model.modules() if isinstance(m, SinusoidalTimeEmbedding)]
        assert all(m.max_frequency <= MAX_FREQUENCY for m in found), entry.name
        shared = {id(m.frequencies) for m in found}
        others = [n for n, b in model.named_buffers() if "frequenc" in n and id(b) not in shared]
        assert not others, (entry.name, others)
        if found:
            embedded.append(entry.name)
    assert {"mlp", "mlp-average"} <= set(embedded)


def test_core_networks_use_the_stated_defaults():
    registry = get_registry()
    velocity = registry.load("flow", "mlp")()
    average = registry.load("flow", "mlp-average")()
    assert velocity.time_features.max_frequency == MAX_FREQUENCY
    assert average.time_features.max_frequency == AVERAGE_MAX_FREQUENCY
    assert math.isclose(velocity.time_features.frequencies[-1].item(), MAX_FREQUENCY, rel_tol=1e-6)
