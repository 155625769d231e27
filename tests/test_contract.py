"""The task contract over every installed plugin: the shared training section on every task."""

import dataclasses
import json
import subprocess
import sys

import pytest

from flow_core.config import resolve_settings
from flow_core.errors import ConfigError
from flow_core.registry import get_registry, using_registry
from flow_core.routing import plan_run


def _tasks():
    listed = subprocess.run(
        [sys.executable, "-m", "flow_core.cli", "list", "task", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return [row["name"] for row in json.loads(listed.stdout)]


# one non-default, valid value for every field of the training section (momentum goes with
# an optimizer that takes it)
SHARED = [
    [("steps", "7")],
    [("batch_size", "3")],
    [("optimizer", "adamw")],
    [("optimizer", "sgd"), ("momentum", "0.5")],
    [("lr", "0.01")],
    [("weight_decay", "0.1")],
    [("betas", "(0.8, 0.9)")],
    [("lr_schedule", "cosine")],
    [("lr_schedule", "linear"), ("warmup_steps", "3")],
    [("grad_clip", "0.5")],
    [("ema_decay", "0.9")],
    [("precision", "bf16")],
    [("compile", "true")],
    [("log_every", "3")],
    [("eval_every", "3")],
    [("checkpoint_every", "3")],
    [("keep_checkpoints", "1")],
]


def _trains(task_name):
    fields = dataclasses.fields(get_registry().load("task", task_name).Config)
    return any(f.name == "train" for f in fields)


TRAINING = [name for name in _tasks() if _trains(name)]
LEARNING_FREE = [name for name in _tasks() if not _trains(name)]


def test_the_learning_free_tasks_are_the_expected_ones():
    assert set(LEARNING_FREE) <= {"sceneflow.icpflow", "sceneflow.optical", "nids.detect"}
    assert {"core.toy2d", "images.digits", "images.patches", "norms.lm"} <= set(TRAINING)


@pytest.mark.parametrize("task_name", TRAINING)
@pytest.mark.parametrize("settings", SHARED, ids=lambda s: ",".join(f"{k}={v}" for k, v in s))
def test_every_task_accepts_every_shared_field(task_name, settings):
    registry = get_registry()
    task_cls = registry.load("task", task_name)
    with using_registry(registry):
        for prefix in ("", "train."):
            overrides = [(prefix + key, value) for key, value in settings]
            resolution = resolve_settings(task_cls.Config, overrides=overrides)
            plan_run(task_cls(), resolution, registry)
            for key, value in settings:
                assert str(getattr(resolution.config.train, key)).lower().replace(" ", "") == (
                    value.lower().replace(" ", "")
                )


@pytest.mark.parametrize("task_name", LEARNING_FREE)
def test_a_task_that_trains_nothing_refuses_training_settings(task_name):
    registry = get_registry()
    task_cls = registry.load("task", task_name)
    with using_registry(registry):
        resolution = resolve_settings(task_cls.Config, overrides=[("optimizer", "adamw")])
        with pytest.raises(ConfigError, match="trains nothing"):
            plan_run(task_cls(), resolution, registry)


@pytest.mark.parametrize("task_name", TRAINING)
def test_every_task_shows_the_same_training_section(task_name):
    shown = subprocess.run(
        [sys.executable, "-m", "flow_core.cli", "info", task_name],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for field in ("train.steps", "train.optimizer", "train.lr_schedule", "train.precision"):
        assert f"    {field}: " in shown
