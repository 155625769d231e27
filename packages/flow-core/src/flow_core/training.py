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

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from flow_core.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from flow_core.errors import CheckpointError, ConfigError, TrainingDivergedError
from flow_core.gpu import (
    EMA,
    all_gather_object,
    autocast,
    barrier,
    make_grad_scaler,
    maybe_compile,
    replica_divergence,
    wrap_ddp,
)

if TYPE_CHECKING:
    from pathlib import Path

    from flow_core.protocols import Batch
    from flow_core.runner import RunContext

__all__ = ["TrainResult", "TrainSettings", "train"]

ObjectiveFn = Callable[[nn.Module, "Batch"], tuple[torch.Tensor, dict[str, float]]]
BatchFn = Callable[[torch.Generator], "Batch"]
EvalFn = Callable[[nn.Module, int], Mapping[str, float]]


@dataclass(frozen=True)
class TrainSettings:
    """Loop settings; tasks usually copy these from their own config."""

    steps: int
    grad_clip: float | None = 1.0
    ema_decay: float | None = None
    precision: str = "fp32"
    log_every: int = 50
    eval_every: int = 0
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    compile: bool = False

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ConfigError(f"steps must be >= 1, got {self.steps}")
        for name in ("log_every", "eval_every", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0 (0 disables), got {getattr(self, name)}")


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


def _rng_state(generator: torch.Generator) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "data": generator.get_state()}
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
        scheduler: torch.optim.lr_scheduler.LRScheduler | None,
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
        rng = all_gather_object(_rng_state(self.generator))
        if self.ctx.is_main:
            state: dict[str, Any] = {
                "step": self.step,
                "metrics": self.metrics,
                "optimizer": self.optimizer.state_dict(),
                "rng": rng,
            }
            if self.scheduler is not None:
                state["scheduler"] = self.scheduler.state_dict()
            save_checkpoint(
                self.directory,
                self.step,
                self.tensors(),
                state,
                keep=self.settings.keep_checkpoints,
            )
        barrier()

    def restore(self) -> None:
        path = latest_checkpoint(self.directory)
        if path is None:
            return
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
            if self.scheduler is not None:
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


def train(
    ctx: RunContext,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    objective: ObjectiveFn,
    next_batch: BatchFn,
    settings: TrainSettings,
    *,
    eval_fn: EvalFn | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    stage: str = "",
) -> TrainResult:
    """Train ``model`` for ``settings.steps`` steps and return a :class:`TrainResult`.

    Args:
        ctx: the run context (device, seed, resume flag, logging, checkpoint directory).
        model: the module to train; moved to ``ctx.device``. Build ``optimizer`` on its
            parameters *before* calling (moving to a device keeps parameter identity).
        objective: ``loss, metrics = objective(model, batch)``.
        next_batch: draws one batch using the given generator (its state is checkpointed, so
            batches after a resume are the ones an uninterrupted run would have drawn).
        settings: see :class:`TrainSettings`.
        eval_fn: called as ``eval_fn(model, step)`` every ``eval_every`` steps with the EMA
            model if any; its metrics are logged with an ``eval/`` prefix.
        scheduler: optional learning-rate scheduler, stepped once per step.
        stage: names one stage of a multi-stage task (teacher, then student, ...): its
            checkpoints go to ``checkpoints/<stage>/`` and its log lines carry the name, so
            each stage resumes on its own. A finished stage resumes as a no-op that returns
            its final model.
    """
    loop = _Loop(ctx, model, optimizer, settings, scheduler, stage)
    if ctx.resume:
        loop.restore()
        ctx.truncate_log(loop.step, stage)
    last_saved = loop.step
    network = maybe_compile(wrap_ddp(loop.model, ctx.device), settings.compile)
    scaler = make_grad_scaler(ctx.device, settings.precision)
    result = TrainResult(
        loop.model, loop.ema.module if loop.ema else None, loop.step, dict(loop.metrics)
    )
    label = f"{ctx.task_name} {stage}".strip()
    bar = ctx.progress(settings.steps, f"train {label}", initial=loop.step)
    network.train()
    while loop.step < settings.steps:
        batch = _move(next_batch(loop.generator), ctx.device)
        with autocast(ctx.device, settings.precision):
            loss, metrics = objective(network, batch)
        if not bool(torch.isfinite(loss.detach())):
            bar.close()
            raise TrainingDivergedError(
                f"loss became {loss.item()} at step {loop.step + 1}; training stopped and"
                f" {_kept(last_saved, loop.directory)}"
            )
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()  # type: ignore[no-untyped-call]
        if settings.grad_clip is not None:
            scaler.unscale_(optimizer)
            grad_norm = nn.utils.clip_grad_norm_(loop.model.parameters(), settings.grad_clip)
            metrics = {**metrics, "grad_norm": float(grad_norm)}
        scaler.step(optimizer)
        scaler.update()
        if scheduler is not None:
            scheduler.step()
        if loop.ema is not None:
            loop.ema.update(loop.model)
        loop.step += 1
        bar.update(1)
        result.metrics = loop.metrics = {"loss": float(loss.detach()), **metrics}
        if settings.log_every and loop.step % settings.log_every == 0:
            lr = optimizer.param_groups[0]["lr"]
            ctx.log(loop.step, {**result.metrics, "lr": float(lr)}, stage)
            bar.set_postfix(loss=f"{result.metrics['loss']:.4g}")
        if eval_fn is not None and settings.eval_every and loop.step % settings.eval_every == 0:
            evaluated = _evaluate(eval_fn, result.eval_model, loop.step)
            ctx.log(loop.step, {f"eval/{k}": v for k, v in evaluated.items()}, stage)
            result.evaluations.append({"step": float(loop.step), **evaluated})
            network.train()
        if settings.checkpoint_every and loop.step % settings.checkpoint_every == 0:
            loop.save(last_saved)
            last_saved = loop.step
    bar.close()
    if last_saved != loop.step:
        loop.save(last_saved)
    if ctx.dist.world_size > 1:
        ctx.log(loop.step, {"ddp/replica_divergence": replica_divergence(loop.model)}, stage)
    result.step = loop.step
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
