"""The ``mlflow`` logger: a local MLflow file store under ``<run>/mlruns/``.

The experiment is the task's name and the MLflow run is named after the run directory; the
config becomes the run's params (nested sections as dotted keys, ``train.lr``) and
``config.json`` an artifact; metrics are logged with the stage as a prefix (``teacher/loss``),
and figures are artifacts under ``figures/``.
Resuming a run continues the same MLflow run and keeps its params (MLflow refuses to change a
param, and a resume may run on another device). Needs ``pip install 'flow-core[mlflow]'``.

MLflow 3 keeps its file store in maintenance mode and refuses it unless the environment
variable ``MLFLOW_ALLOW_FILE_STORE`` is true; this logger sets it for its own process when it
is unset (a database store would need SQLAlchemy and a schema migration per run directory).
View the store with ``MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri <run>/mlruns``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flow_core.loggers.base import flat_items, require, stage_key

__all__ = ["MlflowLogger"]

_MODULE = "mlflow.tracking"
_REQUIREMENT = "flow-core[mlflow]"
_ALLOW_FILE_STORE = "MLFLOW_ALLOW_FILE_STORE"


class MlflowLogger:
    """Logs to an MLflow tracking store kept in the run directory."""

    def __init__(self, run_dir: Path) -> None:
        tracking = require(_MODULE, "mlflow", _REQUIREMENT)
        self._entities = require("mlflow.entities", "mlflow", _REQUIREMENT)
        self.store = run_dir.resolve() / "mlruns"
        os.environ.setdefault(_ALLOW_FILE_STORE, "true")
        self._client = tracking.MlflowClient(tracking_uri=self.store.as_uri())
        self._run_name = run_dir.name
        self._run_id: str | None = None
        self._resumed = False

    @staticmethod
    def check_available() -> None:
        """Raise :class:`UsageError` unless ``mlflow`` imports."""
        require(_MODULE, "mlflow", _REQUIREMENT)

    def _run(self, experiment: str = "flow") -> str:
        """The MLflow run of this run directory: found again on resume, else created."""
        if self._run_id is None:
            found = self._client.get_experiment_by_name(experiment)
            experiment_id = (
                found.experiment_id if found else self._client.create_experiment(experiment)
            )
            # The store belongs to one run directory, so it holds at most this one run.
            earlier = self._client.search_runs([experiment_id], max_results=1)
            self._resumed = bool(earlier)
            if earlier:
                self._run_id = str(earlier[0].info.run_id)
                self._client.update_run(self._run_id, status="RUNNING")
            else:
                run = self._client.create_run(experiment_id, run_name=self._run_name)
                self._run_id = str(run.info.run_id)
        return self._run_id

    def log_config(self, config: Mapping[str, Any]) -> None:
        run_id = self._run(str(config.get("task", "flow")))
        if not self._resumed:
            for key, value in flat_items(config).items():
                self._client.log_param(run_id, key, str(value))
        self._client.log_dict(run_id, dict(config), "config.json")

    def log_metrics(self, step: int, metrics: Mapping[str, float], stage: str = "") -> None:
        now = int(time.time() * 1000)
        batch = [
            self._entities.Metric(stage_key(key, stage), float(value), now, step)
            for key, value in metrics.items()
        ]
        self._client.log_batch(self._run(), metrics=batch)

    def log_figure(self, name: str, path: Path) -> None:
        self._client.log_artifact(self._run(), str(path), artifact_path="figures")

    def close(self) -> None:
        if self._run_id is not None:
            self._client.set_terminated(self._run_id)
