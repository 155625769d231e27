"""``norms.lm``: train a small causal transformer with each chosen norm and optimizer.

For every pair (norm, optimizer) in the config, the same model (same seed, same initial
weights — the norms draw no random numbers) is trained for ``steps`` steps on the same batches
with a linear warm-up and cosine learning-rate schedule, then scored on fixed validation
batches: bits per character on the pydoc text (bits per answer token on the synthetic tasks),
next-token accuracy and, for the synthetic tasks, exact-answer accuracy (all answer tokens
right under teacher forcing, which equals greedy decoding being right). The gradient norm
before clipping is logged every ``log_every`` steps; its mean and maximum are reported. A run
whose loss becomes non-finite is reported as diverged (``diverged`` = 1, bits NaN) and the
other runs continue. Optimizers are registered ``optimizer`` components: torch's ``adamw``,
``adam`` and ``sgd`` (registered by flow-core), and flow-norms' ``adamp`` and ``sgdp``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from flow_core.errors import ConfigError, TrainingDivergedError
from flow_core.options import constructor_options, setting, used_if
from flow_core.registry import active_registry
from flow_core.training import TrainSettings, train, training
from flow_norms.data.lm import DATASETS, Batch, make_dataset
from flow_norms.networks.transformer import CausalTransformer

if TYPE_CHECKING:
    from pathlib import Path

    from flow_core.runner import RunContext

__all__ = ["LanguageModelConfig", "LanguageModelTask"]

_LN2 = math.log(2.0)


def _names(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]


def _takes_momentum(name: str) -> bool:
    return "momentum" in constructor_options(active_registry().load("optimizer", name))


def _compared(config: Any) -> list[str]:
    return [config.train.optimizer, *_names(config.compare_with)]


def _any_sgd(config: Any) -> bool:
    return any(_takes_momentum(name) for name in _compared(config))


def _power(config: Any) -> bool:
    return "power" in _names(config.norms)


_POWER = used_if("norms includes power", _power)


@dataclass(frozen=True)
class LanguageModelConfig:
    """Configuration of ``norms.lm`` (defaults: 4 runs of 400 steps, about 2-3 minutes on one
    CPU thread).

    ``norms`` is a comma-separated list of norm components; the runs use the training
    section's optimizer (``--set optimizer=adamw``) and each optimizer of ``compare_with``.
    Adam-type optimizers train at ``lr`` (with ``warmup_steps`` and the cosine schedule of the
    section), SGD-type ones (``sgd``, ``sgdp``: those taking a momentum) at ``sgd_lr``; weight
    decay applies to matrices only. ``power_*`` options go to PowerNorm only. ``seq_len`` is
    the context of the pydoc model; ``max_len`` the longest digit string of the synthetic
    tasks.
    """

    data: str = "pydoc"
    norms: str = "layer,power"
    compare_with: str = "adamp"
    dim: int = 64
    depth: int = 2
    heads: int = 4
    seq_len: int = 64
    max_len: int = 8
    sgd_lr: float = setting(
        0.1, when=used_if("an SGD-type optimizer (sgd, sgdp) is compared", _any_sgd)
    )
    power_warmup_iters: int = setting(40, when=_POWER)
    power_group_scaling: bool = setting(False, when=_POWER)
    power_backward: str = setting("approx", when=_POWER)
    eval_batches: int = 8
    train: TrainSettings = training(
        steps=400,
        batch_size=32,
        optimizer="adamw",
        lr=3e-3,
        weight_decay=0.01,
        lr_schedule="cosine",
        warmup_steps=40,
        log_every=5,
        eval_every=100,
        checkpoint_every=200,
    )

    def __post_init__(self) -> None:
        if self.data not in DATASETS:
            raise ConfigError(f"data must be one of {', '.join(DATASETS)}, got {self.data!r}")
        if not _names(self.norms):
            raise ConfigError("norms must name at least one norm component")
        for name in ("dim", "depth", "heads", "seq_len", "max_len", "eval_batches"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.dim % self.heads:
            raise ConfigError(f"dim ({self.dim}) must be divisible by heads ({self.heads})")
        if self.train.batch_size < 2:
            raise ConfigError(
                f"batch_size must be >= 2 for batch statistics, got {self.train.batch_size}"
            )
        if self.sgd_lr <= 0:
            raise ConfigError(f"sgd_lr must be > 0, got {self.sgd_lr}")
        if self.power_warmup_iters < 0:
            raise ConfigError(f"power_warmup_iters must be >= 0, got {self.power_warmup_iters}")
        if self.train.log_every < 1:
            raise ConfigError(f"log_every must be >= 1, got {self.train.log_every}")


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


class LanguageModelTask:
    """Compare norms x optimizers on a small transformer LM; see the module docstring."""

    Config: ClassVar[type[LanguageModelConfig]] = LanguageModelConfig

    def run(self, config: LanguageModelConfig, ctx: RunContext) -> dict[str, float]:
        norms, optimizers = _names(config.norms), _compared(config)
        self._check_names(ctx, norms, optimizers)
        dataset = make_dataset(config.data, config.seq_len, config.max_len)
        val = dataset.val_batches(config.train.batch_size, config.eval_batches)
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
        known_optimizers = ctx.registry.names("optimizer")
        for kind, names, known in (
            ("norms", norms, known_norms),
            ("compare_with", optimizers, known_optimizers),
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
        lr = config.sgd_lr if _takes_momentum(optimizer_name) else config.train.lr
        settings = dataclasses.replace(config.train, optimizer=optimizer_name, lr=lr)
        decay = [p for p in model.parameters() if p.ndim > 1]
        no_decay = [p for p in model.parameters() if p.ndim <= 1]
        groups = [
            {"params": decay, "weight_decay": config.train.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]

        def batches(generator: torch.Generator) -> Batch:
            return dataset.train_batch(settings.batch_size, generator)  # type: ignore[no-any-return]

        def eval_fn(network: nn.Module, step: int) -> dict[str, float]:
            return {"val_bits": evaluate(network, val, ctx.device)["val_bits"]}

        try:
            result = train(
                ctx,
                model,
                _objective,
                batches,
                settings,
                eval_fn=eval_fn,
                stage=stage,
                parameters=groups,
            )
        except TrainingDivergedError:
            nan = math.nan
            return {"val_bits": nan, "val_accuracy": nan, "val_exact": nan, "diverged": 1.0}
        scores = evaluate(result.model, val, ctx.device)
        if not math.isfinite(scores["val_bits"]):
            scores["val_bits"] = math.nan
        return {**scores, "diverged": 0.0}

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
            f" heads, pre-norm) trained for {config.train.steps} steps of batch"
            f" {config.train.batch_size}"
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
