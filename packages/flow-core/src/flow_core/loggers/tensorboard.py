"""The ``tensorboard`` logger: a ``SummaryWriter`` event file under ``<run>/tensorboard/``.

Scalars are tagged ``<stage>/<metric>`` (``teacher/loss``; bare ``loss`` for single-stage
tasks), figures become images tagged ``figures/<name>``, and the config record is a text
summary ``config``. Needs ``pip install 'flow-core[tensorboard]'``; view with
``tensorboard --logdir <run>/tensorboard``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flow_core.loggers.base import require, stage_key

__all__ = ["TensorBoardLogger"]

_MODULE = "torch.utils.tensorboard"
_REQUIREMENT = "flow-core[tensorboard]"


class TensorBoardLogger:
    """Writes TensorBoard event files through ``torch.utils.tensorboard.SummaryWriter``."""

    def __init__(self, run_dir: Path) -> None:
        module = require(_MODULE, "tensorboard", _REQUIREMENT)
        self.directory = run_dir / "tensorboard"
        self._writer = module.SummaryWriter(log_dir=str(self.directory))

    @staticmethod
    def check_available() -> None:
        """Raise :class:`UsageError` unless ``tensorboard`` imports."""
        require(_MODULE, "tensorboard", _REQUIREMENT)

    def log_metrics(self, step: int, metrics: Mapping[str, float], stage: str = "") -> None:
        for key, value in metrics.items():
            self._writer.add_scalar(stage_key(key, stage), float(value), global_step=step)

    def log_figure(self, name: str, path: Path) -> None:
        from matplotlib import image

        pixels = image.imread(path)  # height x width x channels, floats in [0, 1]
        self._writer.add_image(f"figures/{name}", pixels, dataformats="HWC")

    def log_config(self, config: Mapping[str, Any]) -> None:
        text = json.dumps(config, indent=2, default=str)
        self._writer.add_text("config", "\n".join("    " + line for line in text.splitlines()))

    def close(self) -> None:
        self._writer.close()
