"""STARFlow: the deep-shallow stack, the Gaussian guidance rule and the autoencoder."""

from __future__ import annotations

import torch

from flow_images.starflow.autoencoder import Autoencoder, ReconstructionObjective
from flow_images.starflow.guidance import gaussian_rule
from flow_images.starflow.model import STARFlow
from flow_images.tarflow import linear_rule


def test_deep_shallow_stack_conditions_only_the_deep_block() -> None:
    flow = STARFlow(width=16, heads=2, deep_depth=3, shallow_depth=1, blocks=3, num_classes=4)
    depths = [len(block.transformer.layers) for block in flow.blocks]
    assert depths == [1, 1, 3]  # the deep block is the first to run when sampling
    assert [block.conditioned for block in flow.blocks] == [False, False, True]
    x = torch.randn(2, 1, 8, 8)
    z, _ = flow(x, torch.tensor([0, 3]))
    assert z.shape == x.shape


def test_gaussian_rule_is_the_conditional_model_at_zero_weight() -> None:
    mu_c, a_c, mu_u, a_u = torch.randn(4, 50).unbind()
    mu, a = gaussian_rule(mu_c, a_c, mu_u, a_u, 0.0)
    torch.testing.assert_close(mu, mu_c)
    torch.testing.assert_close(a, a_c)


def test_gaussian_rule_is_the_product_of_gaussians() -> None:
    """Where σ_c < σ_u (s < 1, no clipping) the rule is N(μ_c, σ_c²)^{1+w}·N(μ_u, σ_u²)^{−w}."""
    mu_c, mu_u = torch.tensor([0.3]), torch.tensor([-0.5])
    a_c, a_u = torch.log(torch.tensor([0.5])), torch.log(torch.tensor([1.0]))
    w = 3.0
    precision = (1 + w) / 0.25 - w / 1.0
    mean = ((1 + w) * 0.3 / 0.25 - w * -0.5 / 1.0) / precision
    mu, a = gaussian_rule(mu_c, a_c, mu_u, a_u, w)
    torch.testing.assert_close(mu, torch.tensor([mean]))
    torch.testing.assert_close(torch.exp(-2 * a), torch.tensor([precision]))


def test_gaussian_rule_stays_finite_where_linear_blows_up() -> None:
    """σ_c > σ_u: s is clipped at 1 and σ̃ = σ_c; linear guidance extrapolates log σ."""
    mu_c, mu_u = torch.tensor([1.0]), torch.tensor([0.0])
    a_c, a_u = torch.tensor([2.0]), torch.tensor([-2.0])
    mu, a = gaussian_rule(mu_c, a_c, mu_u, a_u, 4.0)
    torch.testing.assert_close(a, a_c)
    torch.testing.assert_close(mu, torch.tensor([5.0]))  # ((1+w)·1 − w·0)/1
    _, a_linear = linear_rule(mu_c, a_c, mu_u, a_u, 4.0)
    assert torch.exp(a_linear) > 1e6 * torch.exp(a)


def test_autoencoder_shapes_and_noisy_decoder_objective() -> None:
    torch.manual_seed(0)
    model = Autoencoder(in_channels=1, latent_channels=2, hidden=8, downsamples=1)
    x = torch.rand(6, 1, 8, 8) * 2 - 1
    assert model.encode(x).shape == (6, 2, 4, 4)
    model.standardise(x)
    latents = model.encode(x)
    torch.testing.assert_close(latents.mean(dim=(0, 2, 3)), torch.zeros(2), atol=1e-5, rtol=0)
    batch = {"x1": x, "noise": torch.randn(6, 2, 4, 4)}
    loss, metrics = ReconstructionObjective(noise=0.3)(model, batch)
    loss.backward()
    assert all(p.grad is None for p in model.encoder.parameters())  # the encoder is frozen
    assert metrics["mse"] > 0
