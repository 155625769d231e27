"""GS-Jacobi decoding: it equals sequential decoding, its metrics and its bookkeeping."""

from __future__ import annotations

import itertools

import pytest
import torch

from flow_core.errors import ConfigError, FlowError
from flow_core.models.coupling import AffineCouplingFlow
from flow_images.gsjacobi import GSJacobiSampler
from flow_images.gsjacobi.sampler import module_bounds
from flow_images.tarflow import Guidance, GuidedFlow, TARFlow


def flow(num_classes: int = 0) -> TARFlow:
    torch.manual_seed(0)
    model = TARFlow(
        image_size=4, patch_size=1, width=16, depth=1, blocks=3, heads=2, num_classes=num_classes
    )
    with torch.no_grad():
        for block in model.blocks:
            block.head.weight.normal_(0, 0.3)
    return model.double().eval()


@pytest.mark.parametrize(
    "options",
    [
        {"modules": 1, "tolerance": 0.0},  # plain Jacobi, every iteration
        {"modules": 3, "tough_modules": 5, "tolerance": 0.0, "initial": "zeros"},
        {"modules": 2, "tolerance": 1e-12},  # stops early once converged
    ],
)
def test_jacobi_equals_sequential(options: dict) -> None:
    model = flow(3)
    z = torch.randn(4, 1, 4, 4, dtype=torch.float64)
    cond = torch.tensor([0, 1, 2, 1])
    guided = GuidedFlow(model, Guidance(1.5))
    sampler = GSJacobiSampler(**options)
    torch.testing.assert_close(sampler.sample(guided, z, cond), guided.inverse(z, cond))
    assert len(sampler.iterations) == 3 and all(0 < n <= 15 for n in sampler.iterations)


def test_early_stopping_spends_fewer_iterations_than_tokens() -> None:
    model = flow()
    with torch.no_grad():  # a nearly-constant conditioner: Jacobi converges in few steps
        for block in model.blocks:
            block.head.weight.mul_(0.01)
    z = torch.randn(2, 1, 4, 4, dtype=torch.float64)
    sampler = GSJacobiSampler(tough_blocks=0, tolerance=1e-10)
    torch.testing.assert_close(sampler.sample(model, z), model.inverse(z))
    assert max(sampler.iterations) < 15
    assert sampler.nfe < 3 * 15


def test_crm_ranks_a_stronger_block_as_tougher() -> None:
    model = flow()
    with torch.no_grad():
        model.blocks[1].head.weight.mul_(20)
    z = torch.randn(2, 1, 4, 4, dtype=torch.float64)
    sampler = GSJacobiSampler(tough_blocks=1)
    sampler.sample(model, z)
    assert max(range(3), key=lambda k: sampler.crm[k]) == 1
    assert set(sampler.initial) <= {"input", "zeros"}


def test_module_bounds_cover_the_sequence() -> None:
    assert module_bounds(16, 1) == [(1, 16)]
    bounds = module_bounds(16, 4)
    assert bounds[0][0] == 1 and bounds[-1][1] == 16 and len(bounds) == 4
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
    assert len(module_bounds(4, 10)) == 3


def test_errors() -> None:
    with pytest.raises(ConfigError, match="modules must be >= 1"):
        GSJacobiSampler(modules=0)
    with pytest.raises(ConfigError, match="initial must be one of"):
        GSJacobiSampler(initial="ones")
    with pytest.raises(FlowError, match="TARFlow-family"):
        GSJacobiSampler().sample(AffineCouplingFlow(dim=16), torch.randn(2, 16))
