"""TARFlow: invertibility, the log-determinant, causality, the KV cache, guidance, denoising."""

from __future__ import annotations

import pytest
import torch

from flow_core.errors import ConfigError, FlowError
from flow_core.objectives import MaximumLikelihood
from flow_images.tarflow import Guidance, GuidedFlow, TARFlow, linear_rule
from flow_images.tarflow.denoise import denoise, log_density


def randomised(flow: torch.nn.Module, scale: float = 0.3) -> torch.nn.Module:
    """Perturb the zero-initialised heads so that every block is a non-trivial map."""
    torch.manual_seed(1)
    with torch.no_grad():
        for block in flow.blocks:
            block.head.weight.normal_(0, scale)
            block.head.bias.normal_(0, scale)
    return flow.double().eval()


def tiny(num_classes: int = 0, **options: int) -> TARFlow:
    torch.manual_seed(0)
    sizes = {"image_size": 4, "patch_size": 2, "width": 16, "depth": 1, "blocks": 2, "heads": 2}
    return TARFlow(num_classes=num_classes, **(sizes | options))


def test_new_flow_is_the_identity() -> None:
    flow = tiny()
    x = torch.randn(3, 1, 4, 4)
    z, logdet = flow(x)
    torch.testing.assert_close(z, x)
    torch.testing.assert_close(logdet, torch.zeros(3))


@pytest.mark.parametrize("num_classes", [0, 3])
def test_inverse_undoes_forward(num_classes: int) -> None:
    flow = randomised(tiny(num_classes, patch_size=1, blocks=3))
    x = torch.randn(5, 1, 4, 4, dtype=torch.float64)
    cond = torch.tensor([0, 1, 2, 3, 1]) if num_classes else None
    z, _ = flow(x, cond)
    assert (z - x).abs().max() > 0.1  # a non-trivial map
    torch.testing.assert_close(flow.inverse(z, cond), x, atol=1e-10, rtol=0)
    torch.testing.assert_close(flow.inverse(z, cond, cached=False), x, atol=1e-10, rtol=0)


def test_logdet_matches_autograd_jacobian() -> None:
    flow = randomised(tiny(2, image_size=4, patch_size=2))
    x = torch.randn(1, 1, 4, 4, dtype=torch.float64)
    cond = torch.tensor([1])
    _, logdet = flow(x, cond)
    jacobian = torch.autograd.functional.jacobian(lambda v: flow(v, cond)[0], x).reshape(16, 16)
    torch.testing.assert_close(logdet[0], torch.linalg.slogdet(jacobian)[1])


def test_block_is_causal() -> None:
    """Token i's output depends only on tokens <= i (in the block's order); the first block
    reads left to right, the second right to left."""
    flow = randomised(tiny(patch_size=1, blocks=2))
    tokens = torch.randn(1, 16, 1, dtype=torch.float64)
    for block, reversed_order in zip(flow.blocks, (False, True), strict=True):
        jacobian = torch.autograd.functional.jacobian(lambda t, b=block: b(t)[0], tokens)
        jacobian = jacobian.reshape(16, 16)
        if reversed_order:
            jacobian = jacobian.flip(0, 1)
        assert torch.count_nonzero(jacobian.triu(1)) == 0
        assert torch.count_nonzero(jacobian.tril(-1)) > 0  # it does read the past


def test_kv_cached_inversion_equals_uncached_with_guidance() -> None:
    for num_classes in (0, 4):
        flow = randomised(tiny(num_classes, patch_size=1))
        z = torch.randn(3, 1, 4, 4, dtype=torch.float64)
        cond = torch.tensor([0, 1, 3]) if num_classes else None
        guided = GuidedFlow(flow, Guidance(2.0, temperature=2.0))
        cached = guided.inverse(z, cond)
        torch.testing.assert_close(cached, guided.inverse(z, cond, cached=False))
        assert (cached - flow.inverse(z, cond)).abs().max() > 1e-3  # guidance did something


def test_guidance_at_zero_weight_is_the_conditional_model() -> None:
    flow = randomised(tiny(3, patch_size=1))
    z = torch.randn(4, 1, 4, 4, dtype=torch.float64)
    cond = torch.tensor([0, 1, 2, 0])
    plain = flow.inverse(z, cond)
    torch.testing.assert_close(GuidedFlow(flow, Guidance(0.0)).inverse(z, cond), plain)
    mu_c, a_c, mu_u, a_u = torch.randn(4, 5).unbind()
    assert torch.equal(linear_rule(mu_c, a_c, mu_u, a_u, 0.0)[0], mu_c)
    assert torch.equal(linear_rule(mu_c, a_c, mu_u, a_u, 0.0)[1], a_c)
    torch.testing.assert_close(linear_rule(mu_c, a_c, mu_u, a_u, 2.0)[0], 3 * mu_c - 2 * mu_u)


def test_trains_with_core_nll_objective() -> None:
    torch.manual_seed(0)
    flow = tiny(patch_size=1)
    data = 0.3 * torch.randn(256, 1, 4, 4) + torch.linspace(-1, 1, 16).reshape(1, 1, 4, 4)
    objective = MaximumLikelihood()
    optimizer = torch.optim.Adam(flow.parameters(), lr=3e-3)
    first, _ = objective(flow, {"x1": data})
    for _ in range(25):
        loss, metrics = objective(flow, {"x1": data})
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert metrics["nll"] < first.item() - 0.1


def test_denoise_is_tweedie_for_a_gaussian() -> None:
    """A flow that is the identity has log p = log N(x; 0, I), so one step shrinks by 1 − σ²."""
    flow = tiny()
    x = torch.randn(6, 1, 4, 4)
    torch.testing.assert_close(denoise(flow, x, 0.5), 0.75 * x)
    assert log_density(flow, x).shape == (6,)


def test_errors_name_the_problem() -> None:
    with pytest.raises(ConfigError, match="patch_size 3 must divide image_size 4"):
        tiny(patch_size=3)
    with pytest.raises(ConfigError, match="divisible by heads"):
        tiny(heads=3)
    with pytest.raises(FlowError, match="unconditional"):
        tiny()(torch.randn(2, 1, 4, 4), torch.tensor([0, 1]))
    with pytest.raises(FlowError, match="expected images of shape"):
        tiny()(torch.randn(2, 1, 8, 8))
    with pytest.raises(ConfigError, match="guidance weight"):
        Guidance(-1.0)
