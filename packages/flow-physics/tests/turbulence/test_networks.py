"""Factorized axis attention against a naive implementation, and operator output shapes."""

import pytest
import torch

from flow_physics.turbulence.networks import NETWORKS
from flow_physics.turbulence.networks.encodings import rotate
from flow_physics.turbulence.networks.factformer import apply_along_axis, axis_kernel


def _naive_apply(kernel, v, axis):
    out = torch.zeros_like(v)
    batch, heads, n, _ = kernel.shape
    moved = v.movedim(axis + 1, 1)
    result = out.movedim(axis + 1, 1)
    for b in range(batch):
        for h in range(heads):
            for i in range(n):
                total = 0
                for j in range(n):
                    total = total + kernel[b, h, i, j] * moved[b, j, ..., h, :]
                result[b, i, ..., h, :] = total
    return result.movedim(1, axis + 1)


@pytest.mark.parametrize("grid", [(5, 4), (3, 4, 5)])
def test_axis_attention_equals_naive_loops(grid):
    torch.manual_seed(0)
    v = torch.randn(2, *grid, 2, 3, dtype=torch.float64)
    for axis, n in enumerate(grid):
        q, k = (
            torch.randn(2, n, 2, 3, dtype=torch.float64),
            torch.randn(2, n, 2, 3, dtype=torch.float64),
        )
        kernel = axis_kernel(q, k)
        naive = torch.stack(
            [torch.stack([q[b, :, h] @ k[b, :, h].T / n for h in range(2)]) for b in range(2)]
        )
        assert torch.allclose(kernel, naive)
        assert torch.allclose(apply_along_axis(kernel, v, axis), _naive_apply(kernel, v, axis))


def test_chained_axis_attention_is_the_kronecker_product():
    torch.manual_seed(1)
    kx, ky = (
        torch.randn(1, 1, 4, 4, dtype=torch.float64),
        torch.randn(1, 1, 3, 3, dtype=torch.float64),
    )
    v = torch.randn(1, 4, 3, 1, 1, dtype=torch.float64)
    chained = apply_along_axis(ky, apply_along_axis(kx, v, 0), 1)
    dense = torch.kron(kx[0, 0], ky[0, 0]) @ v.flatten()
    assert torch.allclose(chained.flatten(), dense)


def test_rotary_scores_depend_on_relative_position_only():
    torch.manual_seed(2)
    n = 8
    q = torch.randn(1, 1, 1, 6, dtype=torch.float64).expand(1, n, 1, 6)
    k = torch.randn(1, 1, 1, 6, dtype=torch.float64).expand(1, n, 1, 6)
    scores = axis_kernel(rotate(q), rotate(k))[0, 0]
    for shift in range(n):
        diagonal = torch.stack([scores[i, (i + shift) % n] for i in range(n)])
        assert torch.allclose(diagonal, diagonal[0].expand(n))


@pytest.mark.parametrize("name", sorted(set(NETWORKS) - {"neuralop-fno"}))
@pytest.mark.parametrize("grid", [(16, 16), (8, 8, 8)])
def test_operators_map_fields_to_fields(name, grid):
    cls, fixed = NETWORKS[name]
    d = len(grid)
    small = (
        {"width": 8, "depth": 2, "modes": 3}
        if "fno" in name
        else {"width": 16, "depth": 2, "heads": 2, "head_dim": 4}
    )
    net = cls(channels=d, dimension=d, **small, **fixed)
    u = torch.randn(2, d, *grid)
    out = net(u)
    assert out.shape == u.shape and torch.isfinite(out).all()
    out.square().mean().backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)
