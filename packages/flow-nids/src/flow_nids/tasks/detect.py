"""``nids.detect``: classify every flow of a capture or CSV with a trained FlowTransformer.

Takes a finished ``nids.flowtransformer`` run (``--set run=RUN_DIR``) and a packet capture or
NF-v2 / NF-v3 CSV (``--set data=PATH``). A capture is aggregated into NF-v2 records by
:mod:`flow_nids.data.pcap`; the run's preprocessing (fitted on its training data) is applied;
each flow is classified from the window of flows ending at it, the first ``window - 1``
flows with the first flow repeated as their missing context. Writes ``verdicts.csv`` (one row
per flow: endpoints, protocol, P(attack), verdict) and, where the input carries labels of both
classes, scores the verdicts against them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import pandas as pd

from flow_core.errors import ConfigError
from flow_nids.data.preprocess import EncodedFlows
from flow_nids.data.sources import DATA_HELP, load_records
from flow_nids.detector import load_detector
from flow_nids.flowtransformer.pipeline import score_windows
from flow_nids.metrics import binary_metrics

if TYPE_CHECKING:
    from flow_core.runner import RunContext

__all__ = ["DetectConfig", "DetectTask", "padded"]

_KEYS = ("IPV4_SRC_ADDR", "L4_SRC_PORT", "IPV4_DST_ADDR", "L4_DST_PORT", "PROTOCOL")


@dataclass(frozen=True)
class DetectConfig:
    """The trained run and the records to classify."""

    run: str = ""
    data: str = ""
    threshold: float | None = None

    def __post_init__(self) -> None:
        if self.threshold is not None and not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"threshold must be in (0, 1), got {self.threshold}")


def padded(flows: EncodedFlows, window: int) -> tuple[EncodedFlows, np.ndarray]:
    """``flows`` with ``window - 1`` copies of the first flow in front, and the window end
    of every original flow in the padded arrays."""
    repeat = np.r_[np.zeros(window - 1, dtype=np.int64), np.arange(len(flows.numeric))]
    out = EncodedFlows(flows.numeric[repeat], flows.categorical[repeat])
    return out, np.arange(len(flows.numeric), dtype=np.int64) + window - 1


class DetectTask:
    """One verdict per flow from a trained FlowTransformer; see the module docstring."""

    Config: ClassVar[type[DetectConfig]] = DetectConfig

    def run(self, config: DetectConfig, ctx: RunContext) -> dict[str, float]:
        if not config.run:
            raise ConfigError("set run=RUN_DIR, a finished nids.flowtransformer run")
        if not config.data:
            raise ConfigError(f"set data=PATH: {DATA_HELP}")
        detector = load_detector(Path(config.run).expanduser())
        table = load_records(config.data)
        flows, ends = padded(detector.preprocessor.transform(table.frame), detector.window)
        model = detector.model.to(ctx.device)
        scores = score_windows(model, flows, ends, detector.window, ctx.device)
        threshold = detector.threshold if config.threshold is None else config.threshold
        attack = scores >= threshold
        verdicts = table.frame[list(_KEYS)].copy()
        for column in ("L4_SRC_PORT", "L4_DST_PORT", "PROTOCOL"):
            verdicts[column] = verdicts[column].astype(np.int64)
        verdicts.insert(0, "flow", np.arange(len(verdicts)))
        verdicts["p_attack"] = scores
        verdicts["verdict"] = np.where(attack, "attack", "benign")
        labelled = len(np.unique(table.labels)) == 2
        if labelled:
            verdicts["Attack"] = table.attacks
        if ctx.is_main:
            verdicts.to_csv(ctx.out_dir / "verdicts.csv", index=False)
        metrics = {
            "flows": float(len(verdicts)),
            "flagged": float(attack.sum()),
            "flagged_share": float(attack.mean()),
        }
        if labelled:
            metrics.update(binary_metrics(table.labels, attack))
        ctx.report.add_text(
            f"{len(verdicts)} flows of {table.source} classified by the detector of run"
            f" {config.run} (threshold {threshold}); {int(attack.sum())} flagged as attacks."
            " One verdict per flow is in `verdicts.csv`."
        )
        ctx.report.add_table("First verdicts", _rows(verdicts.head(20)))
        return metrics


def _rows(frame: pd.DataFrame) -> list[dict[str, object]]:
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict(orient="records")]
