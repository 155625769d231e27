"""``nids.sweep``: the paper's table of classification heads × input encodings.

Manocchio et al. 2023 (arXiv:2304.14746) compare heads and encodings with the sequence model
fixed and find that the head matters most, that global average pooling does poorly, and that
a good encoding and head cut model size by more than half without losing F1. This task trains
one FlowTransformer per (encoding, head) pair on one split (each its own checkpointed stage),
and tabulates test F1, balanced accuracy, model size and throughput, with the tree baselines
below.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, ClassVar

from flow_core.errors import ConfigError
from flow_core.training import TrainSettings, training
from flow_nids.data.sources import load_records
from flow_nids.flowtransformer.encodings import ENCODINGS
from flow_nids.flowtransformer.heads import HEADS
from flow_nids.flowtransformer.model import FlowTransformer
from flow_nids.flowtransformer.pipeline import class_counts, prepare, score_windows, train_model
from flow_nids.flowtransformer.sequence import SEQUENCE_MODELS
from flow_nids.metrics import binary_metrics
from flow_nids.tasks.flowtransformer import (
    FlowTransformerConfig,
    architecture,
    evaluate_baselines,
)

if TYPE_CHECKING:
    from flow_core.runner import RunContext

__all__ = ["SweepConfig", "SweepTask"]


def _names(text: str, allowed: tuple[str, ...], key: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in allowed]
    if unknown or not names:
        raise ConfigError(
            f"{key}: unknown {', '.join(unknown) or '(empty)'}; choose from {', '.join(allowed)}"
        )
    return names


@dataclass(frozen=True)
class SweepConfig:
    """The grid (comma-separated names) and what every cell shares."""

    data: str = "nf-synth"
    encodings: str = "none,record,categorical-lookup"
    heads: str = ",".join(HEADS)
    sequence: str = "basic"
    window: int = 8
    hidden: int = 128
    norm: str | None = None
    top_k: int = 32
    test_fraction: float = 0.3
    validation_fraction: float = 0.1
    baselines: bool = True
    train: TrainSettings = training(
        steps=150, batch_size=128, lr=1e-3, log_every=25, checkpoint_every=150
    )

    def __post_init__(self) -> None:
        _names(self.encodings, ENCODINGS, "encodings")
        _names(self.heads, HEADS, "heads")
        if self.sequence not in SEQUENCE_MODELS:
            raise ConfigError(
                f"sequence={self.sequence!r} is unknown; choose one of {', '.join(SEQUENCE_MODELS)}"
            )


class SweepTask:
    """Train and score every (encoding, head) pair; see the module docstring."""

    Config: ClassVar[type[SweepConfig]] = SweepConfig

    def run(self, config: SweepConfig, ctx: RunContext) -> dict[str, float]:
        import torch

        table = load_records(config.data, seed=ctx.seed)
        prepared = prepare(
            table, config.window, config.test_fraction, config.validation_fraction, config.top_k
        )
        test_ends = prepared.ends("test")
        truth = prepared.labels[test_ends]
        rows: list[dict[str, object]] = []
        metrics: dict[str, float] = {}
        for encoding in _names(config.encodings, ENCODINGS, "encodings"):
            for head in _names(config.heads, HEADS, "heads"):
                cell = FlowTransformerConfig(
                    encoding=encoding,
                    sequence=config.sequence,
                    head=head,
                    window=config.window,
                    hidden=config.hidden,
                    norm=config.norm,
                    top_k=config.top_k,
                )
                torch.manual_seed(ctx.seed)
                model = FlowTransformer(window=config.window, **architecture(cell))  # type: ignore[arg-type]
                trained = train_model(
                    ctx, prepared, model, replace(config.train), stage=f"{encoding}-{head}"
                )
                clock = time.perf_counter()
                scores = score_windows(
                    trained.model, prepared.flows, test_ends, config.window, ctx.device
                )
                seconds = time.perf_counter() - clock
                scored = binary_metrics(truth, scores >= 0.5)
                windows = config.train.steps * config.train.batch_size
                train_rate = windows / max(trained.seconds, 1e-9)
                row = {
                    "encoding": encoding,
                    "head": head,
                    "parameters": trained.model.parameter_count(),
                    "f1": scored["f1"],
                    "balanced_accuracy": scored["balanced_accuracy"],
                    "precision": scored["precision"],
                    "recall": scored["recall"],
                    "train flows/s": train_rate,
                    "inference flows/s": len(test_ends) / max(seconds, 1e-9),
                }
                rows.append(row)
                prefix = f"{encoding}/{head}"
                metrics[f"{prefix}/f1"] = scored["f1"]
                metrics[f"{prefix}/balanced_accuracy"] = scored["balanced_accuracy"]
                metrics[f"{prefix}/precision"] = scored["precision"]
                metrics[f"{prefix}/recall"] = scored["recall"]
                metrics[f"{prefix}/parameters"] = float(trained.model.parameter_count())
                metrics[f"{prefix}/train_flows_per_s"] = train_rate
                metrics[f"{prefix}/inference_flows_per_s"] = len(test_ends) / max(seconds, 1e-9)
        baselines = evaluate_baselines(prepared, ctx.seed) if config.baselines else {}
        for name, values in baselines.items():
            for key in ("f1", "balanced_accuracy", "precision", "recall"):
                metrics[f"{name}/{key}"] = values[key]
            metrics[f"{name}/train_flows_per_s"] = values["train_flows_per_s"]
            metrics[f"{name}/inference_flows_per_s"] = values["inference_flows_per_s"]
        if ctx.is_main:
            ctx.report.add_text(
                f"{len(rows)} FlowTransformer configurations (sequence model `{config.sequence}`,"
                f" {config.train.steps} steps each) on {table.source}; test part: the last"
                f" {config.test_fraction:.0%} of the rows ({len(test_ends)} windows,"
                f" {int(truth.sum())} attacks)."
            )
            ctx.report.add_table("Flows per class and part", class_counts(prepared))
            ctx.report.add_table("Heads × encodings (test part)", rows)
            if baselines:
                ctx.report.add_table(
                    "Tree baselines (same features and split)",
                    [
                        {
                            "model": n,
                            **{
                                k: v[k]
                                for k in ("f1", "balanced_accuracy", "inference_flows_per_s")
                            },
                        }
                        for n, v in baselines.items()
                    ],
                )
        return metrics
