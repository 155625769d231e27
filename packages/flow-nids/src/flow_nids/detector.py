"""Saving a trained FlowTransformer with its preprocessing, and loading it for detection.

A run of ``nids.flowtransformer`` writes ``detector/`` in its run directory: ``model.pt``
(the weights, a plain state dict read with ``weights_only=True``), ``preprocessing.json``
(the fitted scaling and level tables) and ``model.json`` (the architecture and the decision
threshold). ``nids.detect`` reads these three files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from flow_core.errors import ConfigError
from flow_nids.data.preprocess import Preprocessor
from flow_nids.flowtransformer.model import FlowTransformer

__all__ = ["DETECTOR_DIR", "Detector", "load_detector", "save_detector"]

DETECTOR_DIR = "detector"


@dataclass(frozen=True)
class Detector:
    """A trained model, its preprocessing, window length and threshold."""

    model: FlowTransformer
    preprocessor: Preprocessor
    window: int
    threshold: float


def save_detector(folder: Path, detector: Detector, architecture: dict[str, object]) -> None:
    """Write the three files of ``folder / detector`` (see the module docstring)."""
    target = folder / DETECTOR_DIR
    target.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in detector.model.state_dict().items()}
    torch.save(state, target / "model.pt")
    (target / "preprocessing.json").write_text(json.dumps(detector.preprocessor.state()))
    description = {**architecture, "window": detector.window, "threshold": detector.threshold}
    (target / "model.json").write_text(json.dumps(description, indent=2))


def load_detector(run: Path) -> Detector:
    """The detector a ``nids.flowtransformer`` run saved.

    Raises:
        ConfigError: ``run`` is no finished ``nids.flowtransformer`` run.
    """
    folder = run / DETECTOR_DIR
    files = [folder / name for name in ("model.pt", "preprocessing.json", "model.json")]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise ConfigError(
            f"run={run} is no finished nids.flowtransformer run: missing {', '.join(missing)}"
        )
    description = json.loads(files[2].read_text())
    preprocessor = Preprocessor.from_state(json.loads(files[1].read_text()))
    window, threshold = int(description.pop("window")), float(description.pop("threshold"))
    model = FlowTransformer(window=window, **description)
    model.load_state_dict(torch.load(files[0], weights_only=True))
    return Detector(model.eval(), preprocessor, window, threshold)
