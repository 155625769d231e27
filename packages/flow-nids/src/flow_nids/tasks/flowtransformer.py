"""``nids.flowtransformer``: train and evaluate one FlowTransformer configuration.

Manocchio et al. 2023 (arXiv:2304.14746). The records (the shipped NF-synth set by default,
or a user's NF-v2 / NF-v3 CSV file with ``--set data=PATH``) are split in file order — the last
``test_fraction`` is the test part — and preprocessed with tables fitted on the training part;
windows of ``window`` consecutive flows, class-balanced batches, and binary cross-entropy are
trained through flow-core's loop. Reported on the test part: F1, balanced accuracy, precision,
recall, per-attack recall, the confusion matrix, model size, and training and inference
throughput in flows per second, beside RandomForest and HistGradientBoosting on the same
features and split.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from flow_core.errors import ConfigError
from flow_core.training import TrainSettings, training
from flow_nids.baselines import BASELINES, make_baseline, tree_features
from flow_nids.data.schema import BENIGN, CATEGORICAL_FEATURES, NUMERIC_FEATURES
from flow_nids.data.sources import load_records
from flow_nids.detector import Detector, save_detector
from flow_nids.figures import confusion_figure
from flow_nids.flowtransformer.encodings import ENCODINGS
from flow_nids.flowtransformer.heads import HEADS
from flow_nids.flowtransformer.model import FlowTransformer
from flow_nids.flowtransformer.pipeline import (
    Prepared,
    class_counts,
    prepare,
    score_windows,
    train_model,
)
from flow_nids.flowtransformer.sequence import SEQUENCE_MODELS
from flow_nids.metrics import binary_metrics, confusion, per_attack_recall

if TYPE_CHECKING:
    from flow_core.runner import RunContext

__all__ = ["FlowTransformerConfig", "FlowTransformerTask", "architecture", "evaluate_baselines"]


@dataclass(frozen=True)
class FlowTransformerConfig:
    """Data, split, architecture and training of one FlowTransformer run."""

    data: str = "nf-synth"
    window: int = 8
    encoding: str = "record"
    sequence: str = "basic"
    head: str = "last-token"
    hidden: int = 128
    dropout: float = 0.1
    norm: str | None = None
    top_k: int = 32
    test_fraction: float = 0.3
    validation_fraction: float = 0.1
    threshold: float = 0.5
    baselines: bool = True
    train: TrainSettings = training(
        steps=300, batch_size=128, lr=1e-3, log_every=25, eval_every=100, checkpoint_every=100
    )

    def __post_init__(self) -> None:
        for name, allowed in (
            ("encoding", ENCODINGS),
            ("sequence", tuple(SEQUENCE_MODELS)),
            ("head", HEADS),
        ):
            if getattr(self, name) not in allowed:
                raise ConfigError(
                    f"{name}={getattr(self, name)!r} is unknown; choose one of {', '.join(allowed)}"
                )
        for name in ("window", "hidden", "top_k"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"threshold must be in (0, 1), got {self.threshold}")


def architecture(config: FlowTransformerConfig) -> dict[str, object]:
    """The FlowTransformer constructor arguments ``config`` names (window aside)."""
    return {
        "numeric": len(NUMERIC_FEATURES),
        "categorical": len(CATEGORICAL_FEATURES),
        "vocabulary": config.top_k + 1,
        "encoding": config.encoding,
        "sequence": config.sequence,
        "head": config.head,
        "hidden": config.hidden,
        "dropout": config.dropout,
        "norm": config.norm,
    }


def evaluate_baselines(prepared: Prepared, seed: int) -> dict[str, dict[str, float]]:
    """F1 & co., fit and inference throughput of the tree baselines, per flow, on the test
    part's window-end flows (the flows FlowTransformer is scored on)."""
    start, stop = prepared.split.train
    train_rows = np.arange(start, stop)
    test_rows = prepared.ends("test")
    results = {}
    for name in BASELINES:
        estimator = make_baseline(name, seed)
        clock = time.perf_counter()
        estimator.fit(tree_features(prepared.flows, train_rows), prepared.labels[train_rows])
        fit_seconds = time.perf_counter() - clock
        features = tree_features(prepared.flows, test_rows)
        clock = time.perf_counter()
        predicted = estimator.predict(features)
        seconds = time.perf_counter() - clock
        metrics = binary_metrics(prepared.labels[test_rows], predicted)
        metrics["train_flows_per_s"] = len(train_rows) / max(fit_seconds, 1e-9)
        metrics["inference_flows_per_s"] = len(test_rows) / max(seconds, 1e-9)
        results[name] = metrics
    return results


class FlowTransformerTask:
    """Train one FlowTransformer and report it against the tree baselines."""

    Config: ClassVar[type[FlowTransformerConfig]] = FlowTransformerConfig

    def run(self, config: FlowTransformerConfig, ctx: RunContext) -> dict[str, float]:
        import torch

        table = load_records(config.data, seed=ctx.seed)
        prepared = prepare(
            table, config.window, config.test_fraction, config.validation_fraction, config.top_k
        )
        test_ends = prepared.ends("test")
        if len(np.unique(prepared.labels[test_ends])) < 2:
            raise ConfigError(
                f"{table.source}: the test part (last {config.test_fraction:.1%} of the rows)"
                " holds only one class; raise test_fraction"
            )
        torch.manual_seed(ctx.seed)
        model = FlowTransformer(window=config.window, **architecture(config))  # type: ignore[arg-type]
        trained = train_model(ctx, prepared, model, config.train)
        clock = time.perf_counter()
        scores = score_windows(trained.model, prepared.flows, test_ends, config.window, ctx.device)
        inference_seconds = time.perf_counter() - clock
        predicted = scores >= config.threshold
        truth = prepared.labels[test_ends]
        metrics = binary_metrics(truth, predicted)
        recalls = per_attack_recall(prepared.attacks[test_ends], predicted, BENIGN)
        metrics.update({f"recall/{name}": value for name, value in recalls.items()})
        metrics["parameters"] = float(trained.model.parameter_count())
        windows_trained = config.train.steps * config.train.batch_size
        metrics["train_flows_per_s"] = windows_trained / max(trained.seconds, 1e-9)
        metrics["inference_flows_per_s"] = len(test_ends) / max(inference_seconds, 1e-9)
        metrics["train_loss"] = trained.loss
        metrics["test_flows"] = float(len(test_ends))
        baselines = evaluate_baselines(prepared, ctx.seed) if config.baselines else {}
        for name, values in baselines.items():
            for key in ("f1", "balanced_accuracy", "precision", "recall", "inference_flows_per_s"):
                metrics[f"{name}/{key}"] = values[key]
        if ctx.is_main:
            save_detector(
                ctx.out_dir,
                Detector(
                    trained.model.cpu(), prepared.preprocessor, config.window, config.threshold
                ),
                architecture(config),
            )
            self._report(ctx, config, prepared, metrics, recalls, baselines, truth, predicted)
        return metrics

    def evaluate(self, config: FlowTransformerConfig, ctx: RunContext) -> dict[str, float]:
        """``flow eval``: the trained weights are loaded, then scored again (e.g. with another
        ``threshold``)."""
        return self.run(config, ctx)

    @staticmethod
    def _report(
        ctx: RunContext,
        config: FlowTransformerConfig,
        prepared: Prepared,
        metrics: dict[str, float],
        recalls: dict[str, float],
        baselines: dict[str, dict[str, float]],
        truth: np.ndarray,
        predicted: np.ndarray,
    ) -> None:
        split = prepared.split
        ctx.report.add_text(
            f"FlowTransformer (encoding `{config.encoding}`, sequence model `{config.sequence}`,"
            f" head `{config.head}`, {int(metrics['parameters'])} parameters) trained"
            f" {config.train.steps} steps on class-balanced windows of {config.window} flows"
            f" from {prepared.table.source} ({prepared.table.schema}, {len(prepared.labels)}"
            f" records). Split in file order: train rows {split.train[0]}–{split.train[1] - 1},"
            f" validation {split.validation[0]}–{split.validation[1] - 1}, test"
            f" {split.test[0]}–{split.test[1] - 1}; preprocessing fitted on the train rows only;"
            " no window crosses a boundary. Scores are on the test part."
        )
        ctx.report.add_table("Flows per class and part", class_counts(prepared))
        rows = [
            {
                "model": f"FlowTransformer ({config.encoding}, {config.sequence}, {config.head})",
                **{k: metrics[k] for k in ("f1", "balanced_accuracy", "precision", "recall")},
                "inference flows/s": metrics["inference_flows_per_s"],
            }
        ]
        for name, values in baselines.items():
            rows.append(
                {
                    "model": name,
                    **{k: values[k] for k in ("f1", "balanced_accuracy", "precision", "recall")},
                    "inference flows/s": values["inference_flows_per_s"],
                }
            )
        ctx.report.add_table("Test part", rows)
        if recalls:
            ctx.report.add_table(
                "Recall per attack class (test part)",
                [{"attack": name, "recall": value} for name, value in recalls.items()],
            )
        path = ctx.report.add_figure("confusion.png", "confusion matrix of the test part")
        confusion_figure(path, confusion(truth, predicted), f"FlowTransformer, {config.head} head")
        ctx.report.add_text(
            "The trained detector (weights, preprocessing, architecture) is in `detector/`;"
            f" classify a capture with `flow run nids.detect --set run={ctx.out_dir}"
            " --set data=CAPTURE.pcap`."
        )
