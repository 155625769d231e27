"""PowerNorm: exact gradients, the approximate backward formula, statistics, masking."""

import pytest
import torch

from flow_core.errors import ConfigError
from flow_norms.norms import NormInputError, PowerNorm
from flow_norms.norms.power import group_scaling, power_norm


def _data(n=12, c=5, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(n, c, generator=g, dtype=dtype) * 2 + 0.5).requires_grad_()
    w = (torch.rand(c, generator=g, dtype=dtype) + 0.5).requires_grad_()
    b = torch.randn(c, generator=g, dtype=dtype).requires_grad_()
    return x, w, b


@pytest.mark.parametrize("masked", [False, True])
def test_exact_mode_with_batch_statistics_passes_gradcheck(masked):
    x, w, b = _data()
    valid = torch.tensor([True, False] * 6) if masked else None
    nu = torch.zeros(5, dtype=torch.float64)

    # during warm-up psi2 is the batch statistic of x itself: check the whole map x -> y
    def module_map(x, w, b):
        rows = x if valid is None else x[valid]
        return power_norm(
            x, w, b, valid, rows.pow(2).mean(0), nu, batch_stats=True, approximate=False
        )

    assert torch.autograd.gradcheck(module_map, (x, w, b), eps=1e-6, atol=1e-6)


def test_exact_mode_with_running_statistics_passes_gradcheck():
    x, w, b = _data()
    psi2 = torch.rand(5, dtype=torch.float64) + 0.5
    nu = torch.zeros(5, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda x, w, b: power_norm(x, w, b, None, psi2, nu, batch_stats=False, approximate=False),
        (x, w, b),
    )


def test_module_in_warmup_passes_gradcheck_in_exact_mode():
    norm = PowerNorm(4, warmup_iters=10**6, backward="exact").double()
    x = torch.randn(3, 5, 4, dtype=torch.float64, requires_grad=True)
    mask = torch.zeros(3, 5, dtype=torch.bool)
    mask[0, 3:] = True
    assert torch.autograd.gradcheck(lambda x: norm(x, mask), (x,))


def test_approximate_backward_follows_the_stated_formula():
    x, w, b = _data(n=10, c=4)
    valid = torch.tensor([True] * 7 + [False] * 3)
    psi2 = torch.rand(4, dtype=torch.float64) + 0.5
    nu0 = torch.randn(4, dtype=torch.float64) * 0.1
    nu = nu0.clone()
    alpha = 0.8
    y = power_norm(x, w, b, valid, psi2, nu, batch_stats=False, approximate=True, alpha_bkw=alpha)
    grad_y = torch.randn_like(y)
    y.backward(grad_y)
    with torch.no_grad():
        inv = 1 / torch.sqrt(psi2 + 1e-5)
        z = x * inv
        g = grad_y * w
        expected = torch.where(valid[:, None], (g - nu0 * z) * inv, g * inv)
        gamma = (z[valid] ** 2).mean(0)
        lam = (z[valid] * g[valid]).mean(0)
        expected_nu = nu0 * (1 - (1 - alpha) * gamma) + (1 - alpha) * lam
    torch.testing.assert_close(x.grad, expected)
    torch.testing.assert_close(nu, expected_nu)
    torch.testing.assert_close(w.grad, (grad_y * z).sum(0))
    torch.testing.assert_close(b.grad, grad_y.sum(0))


def test_running_statistics_warmup_mean_then_ema():
    norm = PowerNorm(3, warmup_iters=2, alpha_fwd=0.9)
    xs = [torch.randn(4, 6, 3) * s for s in (1.0, 2.0, 3.0)]
    q = [x.pow(2).mean((0, 1)) for x in xs]
    norm(xs[0])
    torch.testing.assert_close(norm.running_psi2, q[0])
    norm(xs[1])
    torch.testing.assert_close(norm.running_psi2, (q[0] + q[1]) / 2)
    before = norm.running_psi2.clone()
    y = norm(xs[2])  # after warm-up: the forward pass uses psi_{t-1}
    torch.testing.assert_close(y, xs[2] / torch.sqrt(before + 1e-5))
    torch.testing.assert_close(norm.running_psi2, 0.9 * before + 0.1 * q[2])
    assert int(norm.iters) == 3
    norm.eval()
    torch.testing.assert_close(norm(xs[0]), xs[0] / torch.sqrt(norm.running_psi2 + 1e-5))


def test_padding_is_left_out_of_the_statistics():
    norm_a, norm_b = PowerNorm(3, warmup_iters=5), PowerNorm(3, warmup_iters=5)
    x = torch.randn(2, 4, 3)
    mask = torch.tensor([[False, False, True, True], [False, False, False, True]])
    garbage = x.clone()
    garbage[mask] = 1e3
    ya, yb = norm_a(x, mask), norm_b(garbage, mask)
    torch.testing.assert_close(ya[~mask], yb[~mask])
    torch.testing.assert_close(norm_a.running_psi2, x[~mask].pow(2).mean(0))
    torch.testing.assert_close(norm_a.running_psi2, norm_b.running_psi2)


def test_group_scaling_divides_tokens_by_their_rms():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8)
    y = group_scaling(x, 1e-5)
    torch.testing.assert_close(y.pow(2).mean(-1), torch.ones(2, 3), atol=1e-4, rtol=0)
    # with per-token scaling the layer is invariant to rescaling each token
    scales = torch.rand(2, 3, 1) * 9 + 1
    scaled = PowerNorm(8, group_scaling=True, warmup_iters=10)(x * scales)
    torch.testing.assert_close(
        scaled, PowerNorm(8, group_scaling=True, warmup_iters=10)(x), rtol=1e-4, atol=1e-4
    )
    assert not torch.allclose(PowerNorm(8, warmup_iters=10)(x * scales), PowerNorm(8)(x))


def test_training_step_updates_nu_and_parameters_get_gradients():
    norm = PowerNorm(6, warmup_iters=0)
    x = torch.randn(4, 5, 6, requires_grad=True)
    norm(x).pow(2).sum().backward()
    assert norm.nu.abs().sum() > 0
    assert norm.weight is not None and norm.weight.grad is not None
    assert torch.isfinite(x.grad).all()


def test_state_dict_round_trip():
    norm = PowerNorm(4, warmup_iters=1)
    for _ in range(3):
        norm(torch.randn(2, 3, 4)).sum().backward()
    copy = PowerNorm(4, warmup_iters=1)
    copy.load_state_dict(norm.state_dict())
    assert set(norm.state_dict()) == {"weight", "bias", "running_psi2", "nu", "iters"}
    norm.eval()
    copy.eval()
    x = torch.randn(2, 3, 4)
    torch.testing.assert_close(norm(x), copy(x))


def test_bad_arguments_are_refused():
    with pytest.raises(ConfigError, match="backward"):
        PowerNorm(4, backward="nope")
    with pytest.raises(ConfigError, match="alpha_fwd"):
        PowerNorm(4, alpha_fwd=1.5)
    with pytest.raises(NormInputError, match=r"\(\.\.\., 4\)"):
        PowerNorm(4)(torch.randn(2, 3, 5))
    with pytest.raises(NormInputError, match="padding_mask"):
        PowerNorm(4)(torch.randn(2, 3, 4), torch.zeros(2, 3))


def test_module_backward_with_its_batch_statistic_equals_the_functional_form():
    """The layer hands mean_B(x²) from its forward pass to the approximate backward pass;
    the result must equal the functional form that recomputes it (masked rows left out)."""
    torch.manual_seed(0)
    norm = PowerNorm(4, warmup_iters=0).double()
    norm.nu.copy_(torch.randn(4, dtype=torch.float64) * 0.1)
    x = torch.randn(3, 5, 4, dtype=torch.float64, requires_grad=True)
    mask = torch.zeros(3, 5, dtype=torch.bool)
    mask[1, 2:] = True
    psi2, nu = norm.running_psi2.clone(), norm.nu.clone()
    grad = torch.randn(3, 5, 4, dtype=torch.float64)
    norm(x, mask).backward(grad)
    x2 = x.detach().clone().requires_grad_()
    y = power_norm(
        x2.reshape(-1, 4),
        norm.weight,
        norm.bias,
        ~mask.reshape(-1),
        psi2,
        nu,
        batch_stats=False,
        approximate=True,
    )
    y.backward(grad.reshape(-1, 4))
    torch.testing.assert_close(x.grad, x2.grad)
    torch.testing.assert_close(norm.nu, nu)
