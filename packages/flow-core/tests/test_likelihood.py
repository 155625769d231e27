import math

import pytest
import torch
from torch import nn

from flow_core.errors import ConfigError, FlowError
from flow_core.samplers import log_likelihood


class RotatedGaussianFlow(nn.Module):
    """Exact linear-path velocity from N(0, I) to N(m, R diag(q²) Rᵀ), per axis of R.

    The per-axis closed form is in Lai et al. 2025, "The Principles of Diffusion Models",
    arXiv 2510.21890.

    In the rotated coordinates y = Rᵀx each axis moves independently with
    v_i = m_i + ((t q_i² − (1 − t))/V_i)(y_i − t m_i), V_i = (1 − t)² + t² q_i².
    """

    def __init__(self, dim, seed=0, rotate=True):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.m = torch.randn(dim, generator=g, dtype=torch.float64)
        self.q = 0.3 + torch.rand(dim, generator=g, dtype=torch.float64)
        rotation = torch.linalg.qr(torch.randn(dim, dim, generator=g, dtype=torch.float64))[0]
        self.r = rotation if rotate else torch.eye(dim, dtype=torch.float64)

    def forward(self, x, t, cond=None):
        t = t[:, None].to(torch.float64)
        var = (1 - t) ** 2 + t**2 * self.q**2
        gain = (t * self.q**2 - (1 - t)) / var
        y = (x.to(torch.float64) - t * self.m) @ self.r
        return (self.m + (gain * y) @ self.r.T).to(x.dtype)

    def log_prob(self, x):
        y = (x - self.m) @ self.r
        return (
            -0.5 * (y / self.q).square().sum(1)
            - self.q.log().sum()
            - 0.5 * x.shape[1] * math.log(2 * math.pi)
        )

    def sample(self, n, seed):
        z = torch.randn(n, self.m.numel(), generator=torch.Generator().manual_seed(seed))
        return self.m + (z.double() * self.q) @ self.r.T


@pytest.mark.parametrize("exact", [True, None])
def test_exact_divergence_matches_the_analytic_density(exact):
    flow = RotatedGaussianFlow(3)
    x1 = flow.sample(16, seed=1)
    with torch.no_grad():
        log_p, nfe = log_likelihood(flow, x1, exact=exact, rtol=1e-8, atol=1e-8)
    assert log_p.shape == (16,) and log_p.dtype == torch.float64 and nfe > 0
    torch.testing.assert_close(log_p, flow.log_prob(x1), rtol=1e-5, atol=1e-5)


def test_hutchinson_is_exact_for_a_diagonal_jacobian_in_high_dimension():
    flow = RotatedGaussianFlow(20, rotate=False)
    x1 = flow.sample(8, seed=2)
    with torch.no_grad():  # dim 20 > 16: Hutchinson by default
        log_p, _ = log_likelihood(flow, x1, rtol=1e-7, atol=1e-7)
    torch.testing.assert_close(log_p, flow.log_prob(x1), rtol=1e-4, atol=1e-4)


def test_hutchinson_is_unbiased_and_is_the_default_above_16_dimensions():
    flow = RotatedGaussianFlow(20, seed=3)
    x1 = flow.sample(200, seed=4)
    with torch.no_grad():
        truth = log_likelihood(flow, x1, exact=True, rtol=1e-6, atol=1e-6)[0]
        g = torch.Generator().manual_seed(5)
        default = log_likelihood(flow, x1, rtol=1e-6, atol=1e-6, generator=g)[0]
        g = torch.Generator().manual_seed(5)
        hutch = log_likelihood(flow, x1, exact=False, rtol=1e-6, atol=1e-6, generator=g)[0]
        many = log_likelihood(flow, x1, exact=False, hutchinson_samples=16, rtol=1e-6, atol=1e-6)[0]
    torch.testing.assert_close(default, hutch)  # the default above 16 dims is the estimator
    error, error_many = hutch - truth, many - truth
    assert error.std() > 0.05  # the estimator is in play ...
    assert abs(error.mean()) < 3 * error.std() / math.sqrt(200)  # ... and unbiased
    assert error_many.std() < 0.5 * error.std()  # more probes, less variance
    torch.testing.assert_close(truth, flow.log_prob(x1), rtol=1e-4, atol=1e-4)


def test_log_likelihood_is_differentiable():
    # ∇ log p_1(x1) is the data score −Σ⁻¹(x1 − m).
    flow = RotatedGaussianFlow(2, seed=6)
    x1 = flow.sample(5, seed=7).requires_grad_()
    log_p, _ = log_likelihood(flow, x1, rtol=1e-8, atol=1e-8)
    (grad,) = torch.autograd.grad(log_p.sum(), x1)
    y = (x1.detach() - flow.m) @ flow.r
    torch.testing.assert_close(grad, -(y / flow.q**2) @ flow.r.T, rtol=1e-4, atol=1e-4)


def test_parameter_gradients_flow_through_an_mlp():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 2))

    def model(x, t, cond=None):
        return net(torch.cat([x, t[:, None]], 1))

    log_p, _ = log_likelihood(model, torch.randn(4, 2), rtol=1e-4, atol=1e-4)
    log_p.mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_float32_image_shaped_input_and_cond():
    seen = []

    def model(x, t, cond=None):
        seen.append(cond)
        return -0.5 * x

    x1 = torch.randn(3, 1, 2, 2)
    with torch.no_grad():
        log_p, _ = log_likelihood(model, x1, cond=torch.tensor([1, 2, 3]), method="dopri8")
    assert log_p.dtype == torch.float32 and log_p.shape == (3,)
    assert all(c is not None and c.tolist() == [1, 2, 3] for c in seen)
    # dx/dt = −x/2 maps N(0, I) to N(0, e⁻¹ I).
    expected = -0.5 * math.e * x1.reshape(3, -1).square().sum(1) + 2 - 2 * math.log(2 * math.pi)
    torch.testing.assert_close(log_p, expected, rtol=1e-4, atol=1e-4)


def test_rejects_bad_arguments():
    flow = RotatedGaussianFlow(2)
    with pytest.raises(ConfigError, match="'euler'"):
        log_likelihood(flow, torch.zeros(2, 2), method="euler")
    with pytest.raises(ConfigError, match="hutchinson_samples"):
        log_likelihood(flow, torch.zeros(2, 2), hutchinson_samples=0)
    with pytest.raises(ConfigError, match="rtol"):
        log_likelihood(flow, torch.zeros(2, 2), rtol=0)
    with pytest.raises(FlowError, match=r"shape \(B, \.\.\.\)"):
        log_likelihood(flow, torch.zeros(2))
