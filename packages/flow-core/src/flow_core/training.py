"""A small shared training loop: a helper that tasks call, not a framework.

:func:`train` runs ``settings.steps`` optimizer steps of ``objective(model, batch)`` with
gradient clipping, optional EMA, mixed precision on accelerators, periodic evaluation, a
progress bar, ``metrics.jsonl`` logging and atomic checkpoints. With ``ctx.resume`` it
continues from the newest checkpoint *exactly*: the model, EMA, optimizer, scheduler, step,
the global torch RNG and the data generator of every rank are restored, so a killed and
resumed run ends with the same numbers as an uninterrupted one. A non-finite loss stops
training with :class:`TrainingDivergedError`, keeping the last good checkpoint.
Under torchrun the model is wrapped in DDP and each rank draws its own batches.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from flow_core.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from flow_core.errors import CheckpointError, ConfigError, TrainingDivergedError
from flow_core.gpu import (
    EMA,
    PRECISIONS,
    all_gather_object,
    autocast,
    barrier,
    make_grad_scaler,
    maybe_compile,
    replica_divergence,
    wrap_ddp,
)
from flow_core.options import component, construct, option, section
from flow_core.prefetch import BatchStream

if TYPE_CHECKING:
    from pathlib import Path

    from flow_core.protocols import Batch
    from flow_core.runner import RunContext

__all__ = [
    "LR_SCHEDULES",
    "TrainResult",
    "TrainSettings",
    "build_optimizer",
    "lr_factor",
    "train",
    "training",
]

ObjectiveFn = Callable[[nn.Module, "Batch"], tuple[torch.Tensor, dict[str, float]]]
BatchFn = Callable[[torch.Generator], "Batch"]
EvalFn = Callable[[nn.Module, int], Mapping[str, float]]


LR_SCHEDULES = ("constant", "cosine", "linear")


@dataclass(frozen=True)
class TrainSettings:
    """The training section that every task's config embeds as its field ``train``.

    Set from the command line by dotted path (``--set train.lr=3e-4``) or, where no task
    field has the same name, by the short name (``--set lr=3e-4 --set optimizer=adamw``).

    Attributes:
        steps: optimizer steps (of the task's first stage; later stages may set their own).
        batch_size: samples per step (per process under torchrun).
        optimizer: a registered ``optimizer`` component: ``adam``, ``adamw``, ``sgd`` (torch,
            registered by flow-core) or a plugin's (``adamp``, ``sgdp`` from flow-norms).
        lr: peak learning rate.
        weight_decay: weight decay (decoupled for ``adamw``, ``adamp``, ``sgdp``).
        betas: Adam-type moment decay rates.
        momentum: momentum of SGD-type optimizers.
        lr_schedule: ``constant``, ``cosine`` (to 0 at the last step) or ``linear`` (to 0).
        warmup_steps: linear warm-up from 0 over this many steps, before the schedule.
        grad_clip: clip the gradient norm to this value; 0 disables clipping (the norm is
            still logged as ``grad_norm``).
        ema_decay: decay of an exponential moving average of the weights, evaluated instead
            of the trained weights; 0 disables.
        precision: ``fp32``, or ``bf16`` / ``fp16`` autocast (fp16 with a gradient scaler).
        compile: ``torch.compile`` the model for training.
        prefetch: run the objective's batch preparation (OT-CFM's minibatch pairing; see
            :class:`~flow_core.protocols.BatchPreparer`) for the next batch in a background
            thread while the current step trains. The numbers are the same either way.
        log_every: write a line to the loggers every this many steps (0: never).
        eval_every: run the task's periodic evaluation every this many steps (0: never).
        checkpoint_every: checkpoint every this many steps (0: only at the end).
        keep_checkpoints: how many checkpoints of a stage to keep (at least 1).
    """

    steps: int = 1000
    batch_size: int = 64
    optimizer: str = component("optimizer", "adam")
    lr: float = option("optimizer", "lr", 1e-3)
    weight_decay: float = option("optimizer", "weight_decay", 0.0)
    betas: tuple[float, ...] = option("optimizer", "betas", (0.9, 0.999))
    momentum: float = option("optimizer", "momentum", 0.9)
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    grad_clip: float = 1.0
    ema_decay: float = 0.0
    precision: str = "fp32"
    compile: bool = False
    prefetch: bool = True
    log_every: int = 50
    eval_every: int = 0
    checkpoint_every: int = 500
    keep_checkpoints: int = 2

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("warmup_steps", "log_every", "eval_every", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0 (0 disables), got {getattr(self, name)}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if not self.weight_decay >= 0:
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ConfigError(f"betas must be two numbers in [0, 1), got {self.betas}")
        if not 0.0 <= self.momentum < 1.0:
            raise ConfigError(f"momentum must be in [0, 1), got {self.momentum}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(
                f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}"
            )
        if not 0.0 <= self.grad_clip < math.inf:
            raise ConfigError(f"grad_clip must be >= 0 (0 disables), got {self.grad_clip}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"ema_decay must be in [0, 1) (0 disables), got {self.ema_decay}")
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )


def training(**defaults: Any) -> Any:
    """The ``train`` field of a task config, with the task's own defaults::

    train: TrainSettings = training(steps=3000, batch_size=128, lr=2e-3)
    """
    return section(lambda: TrainSettings(**defaults))


def lr_factor(settings: TrainSettings, step: int) -> float:
    """The multiplier of the peak learning rate at ``step`` (0-based): warm-up, then schedule."""
    ramp = min(1.0, (step + 1) / settings.warmup_steps) if settings.warmup_steps else 1.0
    progress = min(step, settings.steps) / settings.steps
    if settings.lr_schedule == "cosine":
        return ramp * 0.5 * (1.0 + math.cos(math.pi * progress))
    if settings.lr_schedule == "linear":
        return ramp * (1.0 - progress)
    return ramp


def build_optimizer(
    ctx: RunContext, settings: TrainSettings, parameters: Iterable[Any]
) -> torch.optim.Optimizer:
    """The optimizer the section names, from the registry, with the section's options (those
    the optimizer takes) and the options the user set for it (``--set optimizer.eps=1e-6``)."""
    cls = ctx.registry.load("optimizer", settings.optimizer)
    defaults = {
        "lr": settings.lr,
        "weight_decay": settings.weight_decay,
        "betas": tuple(settings.betas),
        "momentum": settings.momentum,
    }
    chosen = ctx.options_for("train.optimizer")
    optimizer: torch.optim.Optimizer = construct(cls, {"params": parameters, **defaults}, chosen)
    return optimizer


@dataclass
class TrainResult:
    """The trained (unwrapped) model, its EMA copy if any, and what the loop last saw."""

    model: nn.Module
    ema: nn.Module | None
    step: int
    metrics: dict[str, float] = field(default_factory=dict)
    evaluations: list[dict[str, float]] = field(default_factory=list)

    @property
    def eval_model(self) -> nn.Module:
        """The EMA model when there is one, else the trained model."""
        return self.ema if self.ema is not None else self.model


def _move(batch: Batch, device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _rng_state(data_state: torch.Tensor) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "data": data_state}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any], generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["data"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class _Loop:
    """State shared by the steps of one :func:`train` call."""

    def __init__(
        self,
        ctx: RunContext,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        settings: TrainSettings,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        stage: str,
    ) -> None:
        self.ctx = ctx
        self.stage = stage
        self.directory = ctx.checkpoint_dir / stage if stage else ctx.checkpoint_dir
        self.model = model.to(ctx.device)
        self.optimizer = optimizer
        self.settings = settings
        self.scheduler = scheduler
        self.ema = EMA(self.model, settings.ema_decay) if settings.ema_decay else None
        self.generator = torch.Generator().manual_seed(ctx.seed * 1_000_003 + ctx.dist.rank)
        torch.manual_seed(ctx.seed + ctx.dist.rank)
        self.step = 0
        self.metrics: dict[str, float] = {}
        self.stream: BatchStream | None = None

    @property
    def eval_model(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.model

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        if self.ema is not None:
            out.update({f"ema.{k}": v for k, v in self.ema.state_dict().items()})
        return out

    def save(self, last_saved: int) -> None:
        if not all(bool(torch.isfinite(p).all()) for p in self.model.parameters()):
            raise TrainingDivergedError(
                f"parameters became non-finite by step {self.step}; training stopped and"
                f" {_kept(last_saved, self.directory)}"
            )
        data_state = self.stream.data_state() if self.stream else self.generator.get_state()
        rng = all_gather_object(_rng_state(data_state))
        if self.ctx.is_main:
            state: dict[str, Any] = {
                "step": self.step,
                "metrics": self.metrics,
                "optimizer": self.optimizer.state_dict(),
                "rng": rng,
            }
            state["scheduler"] = self.scheduler.state_dict()
            save_checkpoint(
                self.directory,
                self.step,
                self.tensors(),
                state,
                keep=self.settings.keep_checkpoints,
            )
        barrier()

    def restore(self) -> bool:
        """Load the newest checkpoint, if there is one; return whether there was."""
        path = latest_checkpoint(self.directory)
        if path is None:
            return False
        tensors, state = load_checkpoint(path)
        expected = self.tensors()
        missing = sorted(set(expected) - set(tensors))
        unexpected = sorted(set(tensors) - set(expected))
        wrong = sorted(
            k for k in set(expected) & set(tensors) if expected[k].shape != tensors[k].shape
        )
        if missing or unexpected or wrong:
            raise CheckpointError(
                f"checkpoint {path} does not match the model: missing {missing[:5]},"
                f" unexpected {unexpected[:5]}, wrong shape {wrong[:5]}"
            )
        self.model.load_state_dict(
            {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
        )
        if self.ema is not None:
            self.ema.load_state_dict(
                {k[len("ema.") :]: v for k, v in tensors.items() if k.startswith("ema.")}
            )
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            rng = state["rng"]
            if len(rng) != self.ctx.dist.world_size:
                raise CheckpointError(
                    f"checkpoint {path} was written by {len(rng)} processes, this run has"
                    f" {self.ctx.dist.world_size}"
                )
            _set_rng_state(rng[self.ctx.dist.rank], self.generator)
            self.step = int(state["step"])
            self.metrics = {str(k): float(v) for k, v in state.get("metrics", {}).items()}
        except (KeyError, ValueError, TypeError, RuntimeError) as error:
            raise CheckpointError(f"checkpoint {path} state does not match: {error}") from None
        return True


def train(
    ctx: RunContext,
    model: nn.Module,
    objective: ObjectiveFn,
    next_batch: BatchFn,
    settings: TrainSettings,
    *,
    eval_fn: EvalFn | None = None,
    stage: str = "",
    parameters: Iterable[Any] | None = None,
) -> TrainResult:
    """Train ``model`` for ``settings.steps`` steps and return a :class:`TrainResult`.

    The optimizer and learning-rate schedule are built from ``settings`` (the task never
    builds them); gradients are clipped, the EMA updated, and under ``bf16``/``fp16`` the
    forward pass autocast, as the section says.

    Args:
        ctx: the run context (device, seed, resume flag, logging, checkpoint directory).
        model: the module to train; moved to ``ctx.device``.
        objective: ``loss, metrics = objective(model, batch)``.
        next_batch: draws one batch of ``settings.batch_size`` samples using the given
            generator (its state is checkpointed, so batches after a resume are the ones an
            uninterrupted run would have drawn).
        settings: the task's training section (see :class:`TrainSettings`); a later stage
            passes its own copy, e.g. ``dataclasses.replace(config.train, steps=...)``.
        eval_fn: called as ``eval_fn(model, step)`` every ``eval_every`` steps with the EMA
            model if any; its metrics are logged with an ``eval/`` prefix.
        stage: names one stage of a multi-stage task (teacher, then student, ...): its
            checkpoints go to ``checkpoints/<stage>/`` and its log lines carry the name, so
            each stage resumes on its own. A finished stage resumes as a no-op that returns
            its final model.
        parameters: what the optimizer updates (parameters or parameter groups, e.g. no
            weight decay on norms and biases); by default all of ``model``'s.

    Returns:
        The trained model, its EMA copy, the step reached and the last step's metrics. In a
        run opened by ``flow eval`` or ``flow sample`` nothing is trained: the stage's newest
        checkpoint is loaded and returned.
    """
    model = model.to(ctx.device)
    if settings.precision != "fp32" and ctx.device.type == "cpu" and not ctx.restore_only:
        warnings.warn(
            f"precision={settings.precision} applies on accelerators; on the CPU this stage"
            " trains in fp32 (CPU autocast is slow and changes numerics)",
            UserWarning,
            stacklevel=2,
        )
    optimizer = build_optimizer(
        ctx, settings, model.parameters() if parameters is None else parameters
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(settings, step))
    loop = _Loop(ctx, model, optimizer, settings, scheduler, stage)
    if ctx.restore_only:
        if not loop.restore():
            raise CheckpointError(
                f"{loop.directory} holds no checkpoint of stage {stage or 'training'!r}:"
                " the run had not saved one when it stopped"
            )
        return _finished(loop)
    if ctx.resume:
        loop.restore()
        ctx.truncate_log(loop.step, stage)
    last_saved = loop.step
    network = maybe_compile(wrap_ddp(loop.model, ctx.device), settings.compile)
    scaler = make_grad_scaler(ctx.device, settings.precision)
    clip = settings.grad_clip if settings.grad_clip > 0 else math.inf
    label = f"{ctx.task_name} {stage}".strip()
    bar = ctx.progress(settings.steps, f"train {label}", initial=loop.step)
    network.train()
    evaluations: list[dict[str, float]] = []
    stream = loop.stream = BatchStream(
        next_batch,
        loop.generator,
        lambda batch: _move(batch, ctx.device),
        objective,
        device=ctx.device,
        seed=ctx.seed,
        rank=ctx.dist.rank,
        stage=stage,
        ahead=settings.prefetch,
    )
    try:
        while loop.step < settings.steps:
            batch = stream.take(loop.step + 1, settings.steps)
            with autocast(ctx.device, settings.precision):
                loss, metrics = objective(network, batch)
            if not bool(torch.isfinite(loss.detach())):
                bar.close()
                raise TrainingDivergedError(
                    f"loss became {loss.item()} at step {loop.step + 1}; training stopped and"
                    f" {_kept(last_saved, loop.directory)}"
                )
            optimizer.zero_grad(set_to_none=True)
            if scaler.is_enabled():  # fp16: scaled gradients, unscaled before clipping
                scaler.scale(loss).backward()  # type: ignore[no-untyped-call]
                scaler.unscale_(optimizer)
            else:
                loss.backward()  # type: ignore[no-untyped-call]
            logging = bool(settings.log_every) and (loop.step + 1) % settings.log_every == 0
            if settings.grad_clip > 0 or logging:  # without clipping, the norm only when logged
                grad_norm = nn.utils.clip_grad_norm_(loop.model.parameters(), clip)
                metrics = {**metrics, "grad_norm": float(grad_norm)}
            if scaler.is_enabled():
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            scheduler.step()
            if loop.ema is not None:
                loop.ema.update(loop.model)
            loop.step += 1
            bar.update(1)
            loop.metrics = {"loss": float(loss.detach()), **metrics}
            if logging:
                lr = optimizer.param_groups[0]["lr"]
                ctx.log(loop.step, {**loop.metrics, "lr": float(lr)}, stage)
                bar.set_postfix(loss=f"{loop.metrics['loss']:.4g}")
            if eval_fn is not None and settings.eval_every and loop.step % settings.eval_every == 0:
                evaluated = _evaluate(eval_fn, loop.eval_model, loop.step)
                ctx.log(loop.step, {f"eval/{k}": v for k, v in evaluated.items()}, stage)
                evaluations.append({"step": float(loop.step), **evaluated})
                network.train()
            if settings.checkpoint_every and loop.step % settings.checkpoint_every == 0:
                loop.save(last_saved)
                last_saved = loop.step
    finally:
        stream.close()
        loop.stream = None
    bar.close()
    if last_saved != loop.step:
        loop.save(last_saved)
    if ctx.dist.world_size > 1:
        ctx.log(loop.step, {"ddp/replica_divergence": replica_divergence(loop.model)}, stage)
    result = _finished(loop)
    result.evaluations = evaluations
    return result


def _finished(loop: _Loop) -> TrainResult:
    result = TrainResult(
        loop.model, loop.ema.module if loop.ema else None, loop.step, dict(loop.metrics)
    )
    result.model.eval()
    result.eval_model.eval()
    return result


def _kept(last_saved: int, directory: Path) -> str:
    if last_saved > 0:
        return f"the last good checkpoint (step {last_saved}) is kept in {directory}"
    return "no checkpoint had been written yet"


def _evaluate(eval_fn: EvalFn, model: nn.Module, step: int) -> dict[str, float]:
    model.eval()
    with torch.no_grad():
        return {k: float(v) for k, v in eval_fn(model, step).items()}
