"""``norms.lm``: train a small causal transformer with each chosen norm and optimizer.

For every pair (norm, optimizer) in the config, the same model (same seed, same initial
weights — the norms draw no random numbers) is trained for ``steps`` steps on the same batches
with a linear warm-up and cosine learning-rate schedule, then scored on fixed validation
batches: bits per character on the pydoc text (bits per answer token on the synthetic tasks),
next-token accuracy and, for the synthetic tasks, exact-answer accuracy (all answer tokens
right under teacher forcing, which equals greedy decoding being right). The gradient norm
before clipping is logged every ``log_every`` steps; its mean and maximum are reported. A run
whose loss becomes non-finite is reported as diverged (``diverged`` = 1, bits NaN) and the
other runs continue. Optimizers: ``adamw`` and ``sgd`` are torch's (foreach), any other name
is looked up among the registered ``optimizer`` components (``adamp``, ``sgdp``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from flow_core.errors import ConfigError, TrainingDivergedError
from flow_core.training import TrainSettings, train
from flow_norms.data.lm import DATASETS, Batch, make_dataset
from flow_norms.networks.transformer import CausalTransformer

if TYPE_CHECKING:
    from pathlib import Path

    from flow_core.runner import RunContext

__all__ = ["LanguageModelConfig", "LanguageModelTask"]

TORCH_OPTIMIZERS = ("adamw", "sgd")
_LN2 = math.log(2.0)


def _names(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]


@dataclass(frozen=True)
class LanguageModelConfig:
    """Configuration of ``norms.lm`` (defaults: 4 runs of 400 steps, about 2-3 minutes on one
    CPU thread).

    ``norms`` and ``optimizers`` are comma-separated names; ``lr`` is for Adam-type optimizers
    and ``sgd_lr`` (with momentum 0.9) for ``sgd`` and ``sgdp``. ``power_*`` options go to
    PowerNorm only. ``seq_len`` is the context of the pydoc model; ``max_len`` the longest digit
    string of the synthetic tasks.
    """

    data: str = "pydoc"
    norms: str = "layer,power"
    optimizers: str = "adamw,adamp"
    dim: int = 64
    depth: int = 2
    heads: int = 4
    seq_len: int = 64
    max_len: int = 8
    batch_size: int = 32
    steps: int = 400
    lr: float = 3e-3
    sgd_lr: float = 0.1
    weight_decay: float = 0.01
    lr_warmup: int = 40
    grad_clip: float = 1.0
    power_warmup_iters: int = 40
    power_group_scaling: bool = False
    power_backward: str = "approx"
    eval_every: int = 100
    eval_batches: int = 8
    log_every: int = 5
    checkpoint_every: int = 200

    def __post_init__(self) -> None:
        if self.data not in DATASETS:
            raise ConfigError(f"data must be one of {', '.join(DATASETS)}, got {self.data!r}")
        if not _names(self.norms) or not _names(self.optimizers):
            raise ConfigError("norms and optimizers must each name at least one component")
        for name in ("dim", "depth", "heads", "seq_len", "max_len", "batch_size", "steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.dim % self.heads:
            raise ConfigError(f"dim ({self.dim}) must be divisible by heads ({self.heads})")
        if self.batch_size < 2:
            raise ConfigError(
                f"batch_size must be >= 2 for batch statistics, got {self.batch_size}"
            )
        for name in ("lr", "sgd_lr"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in (
            "weight_decay",
            "lr_warmup",
            "grad_clip",
            "power_warmup_iters",
            "eval_every",
            "eval_batches",
            "log_every",
            "checkpoint_every",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.eval_batches < 1:
            raise ConfigError(f"eval_batches must be >= 1, got {self.eval_batches}")
        if self.log_every < 1:
            raise ConfigError(f"log_every must be >= 1, got {self.log_every}")


def _objective(
    model: nn.Module, batch: Mapping[str, torch.Tensor]
) -> tuple[torch.Tensor, dict[str, float]]:
    tokens = batch["tokens"]
    logits = model(tokens[:, :-1], batch["padding_mask"])
    losses = F.cross_entropy(logits.transpose(1, 2), tokens[:, 1:], reduction="none")
    mask = batch["loss_mask"]
    loss = (losses * mask).sum() / mask.sum()
    return loss, {"train_bits": float(loss.detach()) / _LN2}


@torch.no_grad()
def evaluate(model: nn.Module, batches: list[Batch], device: torch.device) -> dict[str, float]:
    """Bits per scored token, next-token accuracy and exact-answer accuracy on ``batches``."""
    model.eval()
    nats = tokens_scored = correct = exact = rows = 0.0
    for batch in batches:
        tokens = batch["tokens"].to(device)
        mask = batch["loss_mask"].to(device)
        logits = model(tokens[:, :-1], batch["padding_mask"].to(device))
        targets = tokens[:, 1:]
        losses = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
        right = (logits.argmax(-1) == targets).float() * mask
        nats += float((losses * mask).sum())
        tokens_scored += float(mask.sum())
        correct += float(right.sum())
        exact += float((right.sum(1) == mask.sum(1)).float().sum())
        rows += tokens.shape[0]
    return {
        "val_bits": nats / tokens_scored / _LN2,
        "val_accuracy": correct / tokens_scored,
        "val_exact": exact / rows,
    }


def _schedule(warmup: int, steps: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        ramp = min(1.0, (step + 1) / warmup) if warmup else 1.0
        return ramp * 0.5 * (1.0 + math.cos(math.pi * min(step, steps) / steps))

    return factor


class LanguageModelTask:
    """Compare norms x optimizers on a small transformer LM; see the module docstring."""

    Config: ClassVar[type[LanguageModelConfig]] = LanguageModelConfig

    def run(self, config: LanguageModelConfig, ctx: RunContext) -> dict[str, float]:
        norms, optimizers = _names(config.norms), _names(config.optimizers)
        self._check_names(ctx, norms, optimizers)
        dataset = make_dataset(config.data, config.seq_len, config.max_len)
        val = dataset.val_batches(config.batch_size, config.eval_batches)
        metrics: dict[str, float] = {}
        rows: list[dict[str, Any]] = []
        curves: dict[str, list[dict[str, float]]] = {}
        for norm in norms:
            for optimizer_name in optimizers:
                stage = f"{norm}-{optimizer_name}"
                started = time.perf_counter()
                scores = self._train_one(ctx, config, dataset, val, norm, optimizer_name, stage)
                seconds = time.perf_counter() - started
                curves[stage] = _logged(ctx.out_dir, stage)
                norms_logged = [r["grad_norm"] for r in curves[stage] if "grad_norm" in r]
                scores["grad_norm_mean"] = _mean(norms_logged)
                scores["grad_norm_max"] = max(norms_logged, default=math.nan)
                for key, value in scores.items():
                    metrics[f"{norm}/{optimizer_name}/{key}"] = value
                rows.append({"norm": norm, "optimizer": optimizer_name, **scores, "s": seconds})
        if ctx.is_main:
            self._report(ctx, config, rows, curves)
        return metrics

    @staticmethod
    def _check_names(ctx: RunContext, norms: list[str], optimizers: list[str]) -> None:
        known_norms = ctx.registry.names("norm")
        known_optimizers = [*TORCH_OPTIMIZERS, *ctx.registry.names("optimizer")]
        for kind, names, known in (
            ("norms", norms, known_norms),
            ("optimizers", optimizers, known_optimizers),
        ):
            unknown = [n for n in names if n not in known]
            if unknown:
                raise ConfigError(
                    f"{kind}: unknown {', '.join(map(repr, unknown))};"
                    f" available: {', '.join(known)}"
                )

    def _train_one(
        self,
        ctx: RunContext,
        config: LanguageModelConfig,
        dataset: Any,
        val: list[Batch],
        norm: str,
        optimizer_name: str,
        stage: str,
    ) -> dict[str, float]:
        torch.manual_seed(ctx.seed)

        def norm_factory(dim: int) -> nn.Module:
            module: nn.Module = ctx.build(
                "norm",
                norm,
                num_features=dim,
                warmup_iters=config.power_warmup_iters,
                group_scaling=config.power_group_scaling,
                backward=config.power_backward,
            )
            return module

        model = CausalTransformer(
            dataset.vocab_size,
            dataset.max_len,
            config.dim,
            config.depth,
            config.heads,
            norm_factory,
        )
        optimizer = self._optimizer(ctx, config, optimizer_name, model)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, _schedule(config.lr_warmup, config.steps)
        )
        settings = TrainSettings(
            steps=config.steps,
            grad_clip=config.grad_clip if config.grad_clip > 0 else math.inf,
            log_every=config.log_every,
            eval_every=config.eval_every,
            checkpoint_every=config.checkpoint_every,
        )

        def batches(generator: torch.Generator) -> Batch:
            return dataset.train_batch(config.batch_size, generator)  # type: ignore[no-any-return]

        def eval_fn(network: nn.Module, step: int) -> dict[str, float]:
            return {"val_bits": evaluate(network, val, ctx.device)["val_bits"]}

        try:
            result = train(
                ctx,
                model,
                optimizer,
                _objective,
                batches,
                settings,
                eval_fn=eval_fn,
                scheduler=scheduler,
                stage=stage,
            )
        except TrainingDivergedError:
            nan = math.nan
            return {"val_bits": nan, "val_accuracy": nan, "val_exact": nan, "diverged": 1.0}
        scores = evaluate(result.model, val, ctx.device)
        if not math.isfinite(scores["val_bits"]):
            scores["val_bits"] = math.nan
        return {**scores, "diverged": 0.0}

    @staticmethod
    def _optimizer(
        ctx: RunContext, config: LanguageModelConfig, name: str, model: nn.Module
    ) -> torch.optim.Optimizer:
        decay = [p for p in model.parameters() if p.ndim > 1]
        no_decay = [p for p in model.parameters() if p.ndim <= 1]
        groups = [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        if name == "adamw":
            return torch.optim.AdamW(groups, lr=config.lr, foreach=True)
        if name == "sgd":
            return torch.optim.SGD(groups, lr=config.sgd_lr, momentum=0.9, foreach=True)
        cls = ctx.registry.load("optimizer", name)
        import inspect

        takes_momentum = "momentum" in inspect.signature(cls).parameters
        lr = config.sgd_lr if takes_momentum else config.lr
        optimizer: torch.optim.Optimizer = ctx.build(
            "optimizer", name, params=groups, lr=lr, momentum=0.9
        )
        return optimizer

    @staticmethod
    def _report(
        ctx: RunContext,
        config: LanguageModelConfig,
        rows: list[dict[str, Any]],
        curves: dict[str, list[dict[str, float]]],
    ) -> None:
        unit = "bits per character" if config.data == "pydoc" else "bits per answer token"
        source = (
            "the pydoc_data help text shipped with Python (last 10 % held out)"
            if config.data == "pydoc"
            else f"the synthetic **{config.data}** task (up to {config.max_len} digits)"
        )
        ctx.report.add_text(
            f"A causal transformer (dim {config.dim}, {config.depth} blocks, {config.heads}"
            f" heads, pre-norm) trained for {config.steps} steps of batch {config.batch_size}"
            f" on {source}, once per norm and optimizer, from the same initial weights and"
            f" batches. Validation: {config.eval_batches} fixed batches; val bits = {unit}."
        )
        table = [
            {
                "norm": r["norm"],
                "optimizer": r["optimizer"],
                "val bits": r["val_bits"],
                "val accuracy": r["val_accuracy"],
                "val exact": r["val_exact"],
                "grad norm mean": r["grad_norm_mean"],
                "grad norm max": r["grad_norm_max"],
                "diverged": int(r["diverged"]),
                "train s (not in metrics)": r["s"],
            }
            for r in rows
        ]
        ctx.report.add_table("Validation and gradient statistics", table)
        path = ctx.report.add_figure(
            "curves.png", "training bits, validation bits and gradient norm against step"
        )
        _plot(path, curves, unit)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _logged(out_dir: Path, stage: str) -> list[dict[str, float]]:
    """This stage's lines of ``metrics.jsonl`` (they survive a resume, unlike memory)."""
    path = out_dir / "metrics.jsonl"
    if not path.exists():
        return []
    lines = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line)
    return [r for r in lines if r.get("stage") == stage]


def _plot(path: Path, curves: dict[str, list[dict[str, float]]], unit: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    panels = (
        ("train_bits", "training loss (bits)"),
        ("eval/val_bits", f"validation ({unit})"),
        ("grad_norm", "gradient norm before clipping"),
    )
    for ax, (key, title) in zip(axes, panels, strict=True):
        for stage, records in curves.items():
            points = [(r["step"], r[key]) for r in records if key in r]
            if points:
                steps, values = zip(*points, strict=True)
                ax.plot(steps, values, label=stage, marker="o" if key.startswith("eval") else "")
        ax.set_title(title)
        ax.set_xlabel("step")
        if key == "grad_norm":
            ax.set_yscale("log")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
