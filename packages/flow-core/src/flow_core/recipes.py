"""Staged training of generative flows, in one place for every task that stages.

A generative task's config derives from :class:`GenerativeConfig` (the objective, network and
sampler roles, the sampler's steps and grid, and the stages' settings) and embeds the training
section; :func:`train_generative` runs the stages the config asks for and returns the model to
evaluate with its sampler:

- plain training of the objective (stage ``""``);
- objectives with ``prepare(teacher, time_grid)`` (BOSS, Nguyen et al. 2023, arXiv
  2312.00363): a CFM teacher (stage ``teacher``), a time grid of ``sample_steps`` steps
  (uniform, SD3-shifted or Bellman-optimal for the teacher), and a copy of the teacher
  fine-tuned onto that grid (stage ``finetune``), sampled by Euler on the grid;
- ``reflow_rounds = k`` (Liu et al. 2022, arXiv 2209.03003): the model generates
  (noise, sample) pairs with ``reflow_sampler`` and a student starting from it is trained on
  them with ``reflow_objective`` (stages ``reflow-1`` … ``reflow-k``; ``rf-pp`` is 2-RF++,
  Lee et al. 2024, arXiv 2405.20320);
- a task's own second stage (``refine``, e.g. FlowTurbo's refiner in flow-images) after the
  teacher.

Every stage checkpoints and resumes on its own, and in a run opened by ``flow eval`` each
stage loads its checkpoint instead of training (pairs are then not generated). A ``guide``
function (classifier-free guidance of a class-conditional model) is applied to the teacher
that BOSS straightens and that reflow draws its first pairs from, so that the student carries
the guidance and is sampled without it (``TrainedFlow.guidance_distilled``).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from flow_core.errors import ConfigError
from flow_core.options import component, option, setting, used_if
from flow_core.registry import active_registry
from flow_core.training import TrainSettings, train, training

if TYPE_CHECKING:
    from flow_core.registry import Registry
    from flow_core.runner import RunContext

__all__ = [
    "DEFAULT_SAMPLERS",
    "LATER_STAGES",
    "REFLOWS",
    "GenerativeConfig",
    "TrainedFlow",
    "finetunes",
    "generative_components",
    "train_generative",
]

DEFAULT_SAMPLERS = {"velocity": "euler", "average-velocity": "few-step", "invertible": "inverse"}
"""The sampler a run uses when its config names none, by the model kind it trains."""

PAIRS_SEED = 15_485_863
Batches = Callable[[torch.Generator], dict[str, Tensor]]


def finetunes(config: Any) -> bool:
    """Whether the config's objective fine-tunes a teacher (it has ``prepare``, like BOSS)."""
    objective = active_registry().load("objective", config.objective)
    return callable(getattr(objective, "prepare", None))


LATER_STAGES = used_if(
    "a stage starts from a trained model (objective=boss, reflow_rounds > 0, or the task's"
    " own second stage)",
    lambda config: config.later_stages(),
)
REFLOWS = used_if("reflow_rounds > 0", lambda config: config.reflow_rounds > 0)


@dataclass(frozen=True)
class GenerativeConfig:
    """Fields every generative task shares (a task's config derives from this class).

    Subclasses set their own defaults by restating a field, e.g. the training section::

        train: TrainSettings = training(steps=3000, batch_size=128, lr=2e-3)

    ``flow`` and ``sampler`` default to what the objective's model kind needs (the task's
    ``default_flows``, :data:`DEFAULT_SAMPLERS`); ``sample_steps`` and ``grid`` go to the
    sampler. ``finetune_steps`` is the length of every stage that starts from a trained model
    (BOSS's fine-tune, reflow rounds, a refiner); ``reflow_*`` set the reflow rounds.
    """

    objective: str = component("objective", "cfm")
    flow: str | None = component("flow", None)
    sampler: str | None = component("sampler", None)
    sample_steps: int = option("sampler", "steps", 16)
    grid: str = option("sampler", "grid", "uniform")
    finetune_steps: int = setting(1000, when=LATER_STAGES)
    reflow_rounds: int = 0
    reflow_objective: str = component("objective", "rf-pp", when=REFLOWS)
    reflow_pairs: int = setting(5000, when=REFLOWS)
    reflow_sampler: str = component("sampler", "dopri5", when=REFLOWS)
    eval_samples: int = 1000
    train: TrainSettings = training()

    def later_stages(self) -> bool:
        """Whether a stage starts from a trained model (then ``finetune_steps`` is used);
        a task with a second stage of its own extends this."""
        return finetunes(self) or self.reflow_rounds > 0

    def __post_init__(self) -> None:
        for name in ("sample_steps", "finetune_steps", "reflow_pairs", "eval_samples"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.reflow_rounds < 0:
            raise ConfigError(f"reflow_rounds must be >= 0, got {self.reflow_rounds}")


def generative_components(
    config: GenerativeConfig, registry: Registry, default_flows: Mapping[str, str]
) -> dict[str, str | None]:
    """The roles of a generative run: the configured names, with ``flow`` and ``sampler``
    chosen by the objective's model kind where the config leaves them empty.

    Raises:
        ConfigError: reflow is asked of a model kind other than velocity.
    """
    from flow_core.routing import declared_components

    kind = registry.load("objective", config.objective).model_kind
    chosen = declared_components(config)
    chosen["flow"] = config.flow or default_flows[kind]
    chosen["sampler"] = config.sampler or DEFAULT_SAMPLERS[kind]
    if config.reflow_rounds and kind != "velocity":
        raise ConfigError(
            f"reflow needs a velocity model; objective {config.objective!r} trains a {kind}"
            " model (use e.g. objective=cfm)"
        )
    return chosen


@dataclass
class TrainedFlow:
    """What :func:`train_generative` returns.

    Attributes:
        model: the model to evaluate (EMA weights where the section keeps an EMA).
        sampler: the sampler to evaluate it with.
        model_kind: ``velocity``, ``average-velocity`` or ``invertible``.
        loss: the last training loss of the last stage.
        guidance_distilled: the model learned from a guided teacher and is sampled unguided.
        teacher: the first stage's model where later stages started from it.
    """

    model: nn.Module
    sampler: Any
    model_kind: str
    loss: float
    guidance_distilled: bool = False
    teacher: nn.Module | None = None


def _stage(
    ctx: RunContext,
    config: GenerativeConfig,
    objective: Any,
    batches: Batches,
    network: Callable[[], nn.Module],
    stage: str,
    init: nn.Module | None = None,
) -> tuple[nn.Module, float]:
    torch.manual_seed(ctx.seed)
    model = copy.deepcopy(init).train() if init is not None else network()
    settings = config.train if init is None else _later(config)
    result = train(ctx, model, objective, batches, settings, stage=stage)
    return result.eval_model, result.metrics.get("loss", float("nan"))


def _later(config: GenerativeConfig) -> TrainSettings:
    return dataclasses.replace(config.train, steps=config.finetune_steps)


def train_generative(
    ctx: RunContext,
    config: GenerativeConfig,
    batches: Batches,
    network: Callable[[], nn.Module],
    *,
    sample_shape: tuple[int, ...],
    guide: Callable[[nn.Module], nn.Module] = lambda model: model,
    labels: Callable[[int], Tensor | None] = lambda n: None,
    grid_noise: Callable[[], Tensor] | None = None,
    pair_batch_size: int = 512,
    sampler_defaults: Mapping[str, Any] | None = None,
    objective_defaults: Mapping[str, Any] | None = None,
    refine: Callable[[nn.Module], nn.Module] | None = None,
) -> TrainedFlow:
    """Run the stages the config asks for (see the module docstring).

    Args:
        ctx: the run context.
        config: the task's config (a :class:`GenerativeConfig` with a ``train`` section).
        batches: draws a training batch ``{"x1": ..., "cond": ...}`` from a generator.
        network: builds the untrained network (``ctx.component("flow", ...)``).
        sample_shape: the shape of one sample (reflow pairs, Bellman grids).
        guide: wraps a model in guidance for the teachers of BOSS and reflow.
        labels: the condition of ``n`` generated samples (``None``: unconditional).
        grid_noise: the source samples of the Bellman grid (default 256 seeded draws).
        pair_batch_size: how many reflow pairs to generate at once.
        sampler_defaults, objective_defaults: options the task gives every sampler and
            objective it builds (the user's options win).
        refine: a second stage on the trained teacher, returning the model to evaluate.
    """
    sampler_defaults = dict(sampler_defaults or {})
    objective_defaults = dict(objective_defaults or {})
    objective = ctx.component("objective", **objective_defaults)
    kind: str = objective.model_kind
    sampler = ctx.component("sampler", **sampler_defaults)
    distilled = False
    teacher: nn.Module | None = None
    if refine is not None:
        teacher, loss = _stage(ctx, config, objective, batches, network, "teacher")
        model = refine(teacher)
    elif callable(getattr(objective, "prepare", None)):
        cfm = ctx.build("objective", "cfm", **objective_defaults)
        teacher, _ = _stage(ctx, config, cfm, batches, network, "teacher")
        guided = guide(teacher)
        distilled = guided is not teacher
        noise = grid_noise() if grid_noise is not None else _default_noise(sample_shape)
        grid = _finetune_grid(config, sampler, guided, noise, labels(noise.shape[0]))
        objective.prepare(guided, grid)
        sampler = ctx.build("sampler", "euler", time_grid=grid)
        model, loss = _stage(ctx, config, objective, batches, network, "finetune", teacher)
    else:
        model, loss = _stage(ctx, config, objective, batches, network, "")
    for round_ in range(1, config.reflow_rounds + 1):
        source = model if distilled else guide(model)
        distilled = distilled or source is not model
        pairs = _pairs(ctx, config, source, sample_shape, labels, pair_batch_size, sampler_defaults)
        reflow = ctx.component("reflow_objective", **objective_defaults)
        teacher = teacher or model
        model, loss = _stage(ctx, config, reflow, pairs, network, f"reflow-{round_}", model)
    return TrainedFlow(model, sampler, kind, loss, distilled, teacher)


def _default_noise(shape: tuple[int, ...]) -> Tensor:
    return torch.randn((256, *shape), generator=torch.Generator().manual_seed(104_723))


def _finetune_grid(
    config: GenerativeConfig, sampler: Any, teacher: nn.Module, x0: Tensor, cond: Tensor | None
) -> Tensor:
    """The K-step grid BOSS straightens onto: the config's ``grid`` of ``sample_steps``."""
    from flow_core.samplers.grids import bellman_time_grid, shifted_grid, uniform_grid

    if config.grid == "uniform":
        return uniform_grid(config.sample_steps)
    if config.grid == "shifted":
        return shifted_grid(config.sample_steps, getattr(sampler, "shift", 3.0))
    device = next(teacher.parameters()).device
    with torch.no_grad():
        return bellman_time_grid(
            teacher,
            x0.to(device),
            config.sample_steps,
            max(64, config.sample_steps),
            None if cond is None else cond.to(device),
        ).cpu()


def _pairs(
    ctx: RunContext,
    config: GenerativeConfig,
    teacher: nn.Module,
    shape: tuple[int, ...],
    labels: Callable[[int], Tensor | None],
    batch_size: int,
    sampler_defaults: Mapping[str, Any],
) -> Batches:
    """(noise, teacher sample[, label]) pairs; the student's batches are drawn from them.
    In ``flow eval`` the student's checkpoint is loaded instead, so no pairs are made."""
    from flow_core.objectives.reflow import generate_pairs

    n, size = config.reflow_pairs, config.train.batch_size
    if ctx.restore_only:
        return lambda generator: {}
    generator = torch.Generator().manual_seed(PAIRS_SEED + ctx.seed)
    sampler = ctx.component("reflow_sampler", **sampler_defaults)
    pairs = generate_pairs(
        teacher.to(ctx.device).eval(), sampler, n, batch_size, shape, generator, labels(n)
    )

    def draw(generator: torch.Generator) -> dict[str, Tensor]:
        index = torch.randint(0, n, (size,), generator=generator)
        return {key: value[index] for key, value in pairs.items()}

    return draw
