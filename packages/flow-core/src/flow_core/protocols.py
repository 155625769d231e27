"""The four contracts of the project: Flow, Objective, Sampler and Task.

They are :class:`typing.Protocol` classes, so a third party satisfies them without
inheriting from anything in flow-core.

Time convention (project-wide): ``t = 0`` is the source (noise) sample ``x0`` and ``t = 1`` the
data ``x1``; the linear path is ``x_t = (1 - t) x0 + t x1`` with velocity target ``x1 - x0``.
Time arguments are tensors of shape ``(B,)``; batches are batch-first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

if TYPE_CHECKING:
    from torch import Tensor, nn

    from flow_core.runner import RunContext

__all__ = [
    "AverageVelocityField",
    "Batch",
    "InvertibleFlow",
    "Objective",
    "Sampler",
    "Task",
    "VelocityField",
]

Batch = Mapping[str, "Tensor"]
"""A training batch: ``{"x1": data}`` plus optional ``"x0"`` (source sample) and ``"cond"``."""


@runtime_checkable
class VelocityField(Protocol):
    """A flow in velocity form: ``dx/dt = v(x, t, cond)``, integrated from t=0 to t=1.

    Any callable with this signature satisfies it; nothing needs to inherit from it:

    >>> import torch
    >>> class Drift(torch.nn.Module):
    ...     def forward(self, x, t, cond=None):
    ...         return torch.ones_like(x)  # the exact field from x0 to x1 = x0 + 1
    >>> isinstance(Drift(), VelocityField)
    True
    >>> _ = torch.manual_seed(0)
    >>> x0 = torch.randn(4, 2)
    >>> x1 = x0 + Drift()(x0, torch.zeros(4))  # one Euler step of size 1 is exact here
    >>> torch.allclose(x1 - x0, torch.ones(4, 2))
    True
    """

    def __call__(self, x: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor: ...


@runtime_checkable
class AverageVelocityField(Protocol):
    """A flow map in average-velocity form (MeanFlow).

    ``u(x_r, r, t) = (t - r)^{-1} ∫_r^t v(x_s, s) ds`` for ``r <= t``, so that
    ``x_t = x_r + (t - r) u(x_r, r, t)`` and ``u(x, t, t) = v(x, t)``.
    """

    def __call__(self, x: Tensor, r: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor: ...


@runtime_checkable
class InvertibleFlow(Protocol):
    """A normalizing flow: data ``x`` to latent ``z`` with ``log |det dz/dx|``, and back."""

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]: ...

    def inverse(self, z: Tensor, cond: Tensor | None = None) -> Tensor: ...


@runtime_checkable
class Objective(Protocol):
    """A training objective: ``loss, metrics = objective(model, batch)``.

    ``loss`` is a scalar tensor to minimise; ``metrics`` maps names to floats for logging.
    Couplings, timestep densities and loss weightings are the objective's parameters.
    """

    def __call__(self, model: nn.Module, batch: Batch) -> tuple[Tensor, dict[str, float]]: ...


@runtime_checkable
class Sampler(Protocol):
    """Transports source samples to the target: ``x1 = sampler.sample(model, x0, cond)``.

    After each call ``sampler.nfe`` holds the number of function (network) evaluations the
    call used per sample.
    """

    nfe: int

    def sample(self, model: nn.Module, x0: Tensor, cond: Tensor | None = None) -> Tensor: ...


@runtime_checkable
class Task(Protocol):
    """A runnable, evaluable job: data, model, objective/sampler, metrics and a report.

    ``Config`` is a frozen dataclass whose defaults run on a laptop CPU in minutes on data
    that ships or is generated locally. ``run`` trains and evaluates, writing through
    ``ctx`` (metrics log, report, figures, checkpoints), and returns the final metrics as a
    flat mapping of names to numbers.
    """

    Config: ClassVar[type[Any]]

    def run(self, config: Any, ctx: RunContext) -> Mapping[str, float]: ...
