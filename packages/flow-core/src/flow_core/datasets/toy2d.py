"""Two-dimensional toy targets for flow models, generated locally in pure torch.

The standard 2-D benchmarks of the normalizing-flow and flow-matching literature (Grathwohl
et al. 2019, FFJORD; Tong et al. 2023; Lipman et al. 2023): a flow transports N(0, I) at t = 0
to one of these distributions at t = 1. Each is centred near the origin with a per-coordinate
standard deviation between about 0.7 and 1.5:

- ``eight-gaussians``: an equal mixture of N(2·(cos kπ/4, sin kπ/4), 0.2²·I), k = 0…7;
- ``moons``: two interleaved half circles of radius 1 with Gaussian noise 0.1, scaled by 1.5;
- ``checkerboard``: uniform on the 8 dark unit squares of a 4×4 board on [−2, 2]²;
- ``circles``: two concentric rings of radii 1 and 2 with radial noise 0.05;
- ``swiss-roll``: the spiral s·(cos s, sin s), s ~ U(1.5π, 4.5π), scaled by 1/5, noise 0.05.

Every sampler draws only from the given generator (torch's global one when ``None``) and
returns float32 points on the CPU, so a seeded generator reproduces the data exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from flow_core.errors import ConfigError

__all__ = ["TOY2D_TARGETS", "sample_toy2d"]

_Sampler = Callable[[int, torch.Generator | None], Tensor]


def _choice(n: int, k: int, generator: torch.Generator | None) -> Tensor:
    return torch.randint(k, (n,), generator=generator)


def _polar(radius: Tensor, angle: Tensor) -> Tensor:
    return torch.stack([radius * angle.cos(), radius * angle.sin()], dim=1)


def _eight_gaussians(n: int, generator: torch.Generator | None) -> Tensor:
    angle = _choice(n, 8, generator).float() * (math.pi / 4)
    return _polar(torch.full((n,), 2.0), angle) + 0.2 * torch.randn((n, 2), generator=generator)


def _moons(n: int, generator: torch.Generator | None) -> Tensor:
    lower = _choice(n, 2, generator).bool()
    angle = math.pi * torch.rand(n, generator=generator)
    upper_arc = _polar(torch.ones(n), angle)
    lower_arc = torch.tensor([1.0, 0.5]) - upper_arc
    points = torch.where(lower[:, None], lower_arc, upper_arc)
    points = points + 0.1 * torch.randn((n, 2), generator=generator)
    return 1.5 * (points - torch.tensor([0.5, 0.25]))


def _checkerboard(n: int, generator: torch.Generator | None) -> Tensor:
    column = _choice(n, 4, generator)
    row = 2 * _choice(n, 2, generator) + column % 2
    cell = torch.stack([column, row], dim=1).float()
    return cell + torch.rand((n, 2), generator=generator) - 2.0


def _circles(n: int, generator: torch.Generator | None) -> Tensor:
    radius = 1.0 + _choice(n, 2, generator).float() + 0.05 * torch.randn(n, generator=generator)
    return _polar(radius, 2 * math.pi * torch.rand(n, generator=generator))


def _swiss_roll(n: int, generator: torch.Generator | None) -> Tensor:
    s = 1.5 * math.pi * (1.0 + 2.0 * torch.rand(n, generator=generator))
    return _polar(s, s) / 5.0 + 0.05 * torch.randn((n, 2), generator=generator)


_TARGETS: dict[str, _Sampler] = {
    "eight-gaussians": _eight_gaussians,
    "moons": _moons,
    "checkerboard": _checkerboard,
    "circles": _circles,
    "swiss-roll": _swiss_roll,
}

TOY2D_TARGETS: tuple[str, ...] = tuple(_TARGETS)
"""The names :func:`sample_toy2d` accepts."""


def sample_toy2d(name: str, n: int, generator: torch.Generator | None = None) -> Tensor:
    """Draw ``n`` points, shape ``(n, 2)``, from the 2-D target ``name``.

    Raises:
        ConfigError: ``name`` is not one of :data:`TOY2D_TARGETS`, or ``n`` is negative.
    """
    if name not in _TARGETS:
        raise ConfigError(
            f"unknown toy 2-D target {name!r}; valid names: {', '.join(TOY2D_TARGETS)}"
        )
    if n < 0:
        raise ConfigError(f"toy 2-D target {name!r}: n must be >= 0, got {n}")
    return _TARGETS[name](n, generator)
