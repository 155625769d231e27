"""The contracts of the project: Flow, Objective, Sampler, Task, and the run a task receives.

They are :class:`typing.Protocol` classes, so a third party satisfies them without
inheriting from anything in flow-core. This module is the ground floor of the house: it
imports nothing of the project, so every other module and every plugin stands on it. What
the runner relies on is declared here, and :func:`flow_core.testing.check_plugin` checks it:

* flows, objectives and samplers declare the ``model_kind`` they are for (one of
  :data:`MODEL_KINDS`); the runner refuses a run whose components disagree, before it starts;
* a class-conditional flow exposes ``num_classes`` and the ``null_label`` that means "no
  condition" (classifier-free guidance);
* an objective that fine-tunes a trained model (BOSS) has ``prepare(teacher, time_grid)``;
* a sampler reports ``nfe`` after each call;
* a task has a frozen-dataclass ``Config`` and ``run(config, ctx)``; optionally
  ``components(config, registry)``, ``evaluate(config, ctx)`` and
  ``sample(config, ctx, count)`` (``flow eval`` and ``flow sample``).

Time convention (project-wide): ``t = 0`` is the source (noise) sample ``x0`` and ``t = 1`` the
data ``x1``; the linear path is ``x_t = (1 - t) x0 + t x1`` with velocity target ``x1 - x0``.
Time arguments are tensors of shape ``(B,)``; batches are batch-first.

>>> import torch
>>> from flow_core.models.mlp import MLPVelocity
>>> _ = torch.manual_seed(0)
>>> field = MLPVelocity(dim=2, hidden=8)
>>> isinstance(field, VelocityField), field.model_kind
(True, 'velocity')
>>> field(torch.randn(4, 2), torch.rand(4)).shape
torch.Size([4, 2])
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch
    from torch import Tensor, nn

__all__ = [
    "MODEL_KINDS",
    "AverageVelocityField",
    "Batch",
    "BatchPreparer",
    "ConditionalFlow",
    "InvertibleFlow",
    "Objective",
    "Run",
    "Sampler",
    "Task",
    "TeacherObjective",
    "VelocityField",
]

MODEL_KINDS = ("velocity", "average-velocity", "invertible")
"""The three shapes of a flow, which objectives and samplers name as their ``model_kind``."""

Batch = Mapping[str, "Tensor"]
"""A training batch: ``{"x1": data}`` plus optional ``"x0"`` (source sample) and ``"cond"``."""


@runtime_checkable
class VelocityField(Protocol):
    """A flow in velocity form: ``dx/dt = v(x, t, cond)``, integrated from t=0 to t=1.

    ``model_kind = "velocity"``.
    """

    model_kind: ClassVar[str]

    def __call__(self, x: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor: ...


@runtime_checkable
class AverageVelocityField(Protocol):
    """A flow map in average-velocity form (MeanFlow), ``model_kind = "average-velocity"``.

    ``u(x_r, r, t) = (t - r)^{-1} ∫_r^t v(x_s, s) ds`` for ``r <= t``, so that
    ``x_t = x_r + (t - r) u(x_r, r, t)`` and ``u(x, t, t) = v(x, t)``.
    """

    model_kind: ClassVar[str]

    def __call__(self, x: Tensor, r: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor: ...


@runtime_checkable
class InvertibleFlow(Protocol):
    """A normalizing flow, ``model_kind = "invertible"``: data ``x`` to latent ``z`` with
    ``log |det dz/dx|``, and back."""

    model_kind: ClassVar[str]

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]: ...

    def inverse(self, z: Tensor, cond: Tensor | None = None) -> Tensor: ...


@runtime_checkable
class ConditionalFlow(Protocol):
    """A class-conditional flow: ``cond`` holds labels in ``[0, num_classes]``, and
    ``null_label`` (``num_classes``) means "unconditional" for classifier-free guidance."""

    num_classes: int

    @property
    def null_label(self) -> int: ...


@runtime_checkable
class Objective(Protocol):
    """A training objective: ``loss, metrics = objective(model, batch)``.

    ``loss`` is a scalar tensor to minimise; ``metrics`` maps names to floats for logging.
    Couplings, timestep densities and loss weightings are the objective's parameters;
    ``model_kind`` is the kind of flow it trains.
    """

    model_kind: ClassVar[str]

    def __call__(self, model: nn.Module, batch: Batch) -> tuple[Tensor, dict[str, float]]: ...


@runtime_checkable
class BatchPreparer(Protocol):
    """An objective with work on a batch that does not involve the model (the minibatch OT
    pairing of OT-CFM), split out as ``prepare_batch`` so that the training loop can run it
    for the next batch in a background thread while the current step trains.

    ``prepare_batch(batch, generator)`` returns the prepared batch, which ``__call__`` then
    accepts as it is. It must draw randomness only from ``generator`` (a fresh generator
    seeded from the run's seed, stage and step, so that the result is the same whether it
    runs ahead or not, and after a resume), never touch the model, and return ``batch``
    itself when there is nothing to prepare.
    """

    def prepare_batch(self, batch: Batch, generator: torch.Generator) -> Batch: ...


@runtime_checkable
class TeacherObjective(Objective, Protocol):
    """An objective that fine-tunes a copy of a trained model (BOSS straightening): the
    runner's recipe trains a teacher first and calls ``prepare(teacher, time_grid)``."""

    def prepare(self, teacher: nn.Module, time_grid: Tensor) -> None: ...


@runtime_checkable
class Sampler(Protocol):
    """Transports source samples to the target: ``x1 = sampler.sample(model, x0, cond)``.

    After each call ``sampler.nfe`` holds the number of function (network) evaluations the
    call used per sample; ``model_kind`` is the kind of flow it integrates.
    """

    model_kind: ClassVar[str]
    nfe: int

    def sample(self, model: nn.Module, x0: Tensor, cond: Tensor | None = None) -> Tensor: ...


@runtime_checkable
class Run(Protocol):
    """What a task receives as ``ctx`` (:class:`flow_core.runner.RunContext` implements it).

    Attributes:
        task_name, config, device, seed: the run's facts.
        out_dir: where this invocation writes its report, figures and metrics.
        resume: continue from each stage's newest checkpoint.
        restore_only: ``flow eval``/``flow sample``: stages load checkpoints, nothing trains.
        is_main: this process writes files (rank 0 under torchrun).
        report: ``report.md`` under construction (``add_text``, ``add_table``,
            ``add_figure``).
    """

    task_name: str
    config: Any
    out_dir: Path
    device: torch.device
    seed: int
    resume: bool
    report: Any

    @property
    def is_main(self) -> bool: ...

    @property
    def restore_only(self) -> bool: ...

    def component(self, role: str, name: str | None = None, **defaults: Any) -> Any:
        """Build the component that fills ``role`` (a component field of the config)."""
        ...

    def build(self, kind: str, name: str, **options: Any) -> Any:
        """Build a registered component by kind and name (options it does not take are
        left out)."""
        ...

    def log(self, step: int, metrics: Mapping[str, float], stage: str = "") -> None:
        """Send one step's metrics to the loggers."""
        ...

    def progress(self, total: int, desc: str, initial: int = 0) -> Any:
        """A progress bar (silent on other ranks or with ``--no-progress``)."""
        ...


@runtime_checkable
class Task(Protocol):
    """A runnable, evaluable job: data, model, objective/sampler, metrics and a report.

    ``Config`` is a frozen dataclass whose defaults run on a laptop CPU in minutes on data
    that ships or is generated locally; it embeds the training section as its field
    ``train`` (:class:`flow_core.training.TrainSettings`) and names its components with
    :func:`flow_core.options.component`. ``run`` trains and evaluates, writing through
    ``ctx`` (logs, report, figures, checkpoints), and returns the final metrics as a flat
    mapping of names to numbers.

    Optional methods the runner uses when present:

    * ``components(config, registry) -> {role: name or None}``: the component chosen for
      each role, where a field left ``None`` is decided by others (a network by the
      objective's model kind); by default the fields' values;
    * ``evaluate(config, ctx) -> metrics`` for ``flow eval`` (``ctx.restore_only`` is true:
      the training loop loads each stage's checkpoint instead of training);
    * ``sample(config, ctx, count) -> {name: tensor}`` for ``flow sample``.
    """

    Config: ClassVar[type[Any]]

    def run(self, config: Any, ctx: Run) -> Mapping[str, float]: ...
