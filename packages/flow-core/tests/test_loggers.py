"""Experiment loggers: the jsonl default, TensorBoard and MLflow read back, the logger kind's
fan-out, close-on-failure, resume and the errors for unknown loggers and missing packages."""

import dataclasses
import json
import subprocess
import sys
import types
from typing import ClassVar

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from flow_core import FLOW_PLUGIN_API, Component, hookimpl
from flow_core.cli import main
from flow_core.errors import ConfigError, PluginError
from flow_core.loggers import LoggerSet, open_loggers, take_loggers_option
from flow_core.runner import execute
from flow_core.testing import check_plugin, isolated_registry, run_task

TINY = {"steps": 20, "eval_samples": 64, "likelihood": "false", "hidden": 16, "log_every": 5}
TINY_SETS = [arg for k, v in TINY.items() for arg in ("--set", f"{k}={v}")]


def jsonl(run, key):
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [(line["step"], line[key]) for line in lines if key in line]


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """One tiny toy2d run with the tensorboard and mlflow loggers."""
    run = tmp_path_factory.mktemp("both") / "run"
    run_task("core.toy2d", run, {**TINY, "loggers": "tensorboard,mlflow"})
    return run


def test_tensorboard_holds_the_jsonl_losses_the_figure_and_the_config(both):
    events = EventAccumulator(str(both / "tensorboard"))
    events.Reload()
    expected = jsonl(both, "loss")
    assert [step for step, _ in expected] == [5, 10, 15, 20]
    scalars = [(e.step, e.value) for e in events.Scalars("loss")]
    assert scalars == [(step, float(np.float32(value))) for step, value in expected]
    image = events.Images("figures/samples")[0]
    assert image.width > 100 and image.encoded_image_string.startswith(b"\x89PNG")
    text = events.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert '"task": "core.toy2d"' in text and '"steps": 20' in text


def test_mlflow_store_holds_the_jsonl_losses_params_and_figure(both):
    client = MlflowClient(tracking_uri=(both / "mlruns").resolve().as_uri())
    experiment = client.get_experiment_by_name("core.toy2d")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == both.name
    history = client.get_metric_history(run.info.run_id, "loss")
    assert sorted((m.step, m.value) for m in history) == jsonl(both, "loss")
    assert run.data.params["train.steps"] == "20" and run.data.params["task"] == "core.toy2d"
    figures = [a.path for a in client.list_artifacts(run.info.run_id, "figures")]
    assert figures == ["figures/samples.png"]


def test_resume_reuses_the_recorded_loggers_and_the_same_mlflow_run(tmp_path, capsys):
    run = tmp_path / "run"
    sets = [*TINY_SETS, "--set", "steps=10", "--out", str(run), "--no-progress"]
    assert main(["run", "core.toy2d", *sets, "--set", "loggers=mlflow,tensorboard"]) == 0
    assert main(["run", "core.toy2d", *sets, "--resume"]) == 0, capsys.readouterr().err
    record = json.loads((run / "config.json").read_text())
    assert record["loggers"] == ["jsonl", "mlflow", "tensorboard"]
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 2
    client = MlflowClient(tracking_uri=(run / "mlruns").resolve().as_uri())
    (only,) = client.search_runs([client.get_experiment_by_name("core.toy2d").experiment_id])
    assert only.info.status == "FINISHED" and only.data.params["train.steps"] == "10"


def test_the_choice_is_recorded_and_jsonl_stays_alone_by_default(both, tmp_path):
    record = json.loads((both / "config.json").read_text())
    assert record["loggers"] == ["jsonl", "tensorboard", "mlflow"]
    plain = tmp_path / "plain"
    run_task("core.toy2d", plain, {**TINY, "steps": 5})
    assert json.loads((plain / "config.json").read_text())["loggers"] == ["jsonl"]
    assert not (plain / "tensorboard").exists() and not (plain / "mlruns").exists()


class Recorder:
    """A logger that records every call in a class-level list."""

    calls: ClassVar[list] = []

    def __init__(self, run_dir):
        self.calls.append(("open", run_dir.name))

    def log_metrics(self, step, metrics, stage=""):
        self.calls.append(("metrics", step, stage, sorted(metrics)))

    def log_figure(self, name, path):
        self.calls.append(("figure", name, path.is_file()))

    def log_config(self, config):
        self.calls.append(("config", config["task"]))

    def close(self):
        self.calls.append(("close",))


@dataclasses.dataclass(frozen=True)
class BoomConfig:
    steps: int = 3


class Boom:
    """A task that logs once and then fails."""

    Config = BoomConfig

    def run(self, config, ctx):
        ctx.log(1, {"loss": 1.0})
        raise RuntimeError("boom")


@pytest.fixture
def registry(monkeypatch):
    module = types.ModuleType("fake_recorder_plugin")
    module.FLOW_PLUGIN_API = FLOW_PLUGIN_API
    module.Recorder, module.Boom = Recorder, Boom
    module.flow_register_loggers = hookimpl(
        lambda: [Component("recorder", "fake_recorder_plugin:Recorder", "records calls")]
    )
    module.flow_register_tasks = hookimpl(
        lambda: [Component("fake-recorder-plugin.boom", "fake_recorder_plugin:Boom", "fails")]
    )
    monkeypatch.setitem(sys.modules, "fake_recorder_plugin", module)
    monkeypatch.setattr(Recorder, "calls", [])
    return isolated_registry(module)


def test_a_plugin_logger_gets_config_metrics_figures_and_close_and_resume_reuses_it(
    registry, tmp_path
):
    run = tmp_path / "run"
    sets = [(k, str(v)) for k, v in {**TINY, "checkpoint_every": 10}.items()]
    options = {"out": run, "device": "cpu", "registry": registry, "show_progress": False}
    execute("core.toy2d", overrides=sets, loggers=["recorder"], **options)
    calls = Recorder.calls
    assert calls[:2] == [("open", "run"), ("config", "core.toy2d")]
    assert ("metrics", 20, "", ["grad_norm", "loss", "lr"]) in calls
    assert calls[-2:] == [("figure", "samples", True), ("close",)]
    Recorder.calls.clear()
    execute("core.toy2d", overrides=sets, resume=True, **options)
    assert json.loads((run / "config.json").read_text())["loggers"] == ["jsonl", "recorder"]
    assert Recorder.calls[0] == ("open", "run") and Recorder.calls[-1] == ("close",)


def test_loggers_are_closed_when_the_task_fails(registry, tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        execute(
            "fake-recorder-plugin.boom",
            out=tmp_path / "r",
            device="cpu",
            registry=registry,
            overrides=[("loggers", "recorder")],
            show_progress=False,
        )
    assert Recorder.calls[-2:] == [("metrics", 1, "", ["loss"]), ("close",)]
    assert json.loads((tmp_path / "r" / "status.json").read_text())["state"] == "failed"
    assert jsonl(tmp_path / "r", "loss") == [(1, 1.0)]


def test_logger_set_closes_every_logger_when_one_fails(tmp_path, monkeypatch):
    class Failing(Recorder):
        def close(self):
            raise OSError("disk full")

    monkeypatch.setattr(Recorder, "calls", [])
    loggers = LoggerSet({"a": Failing(tmp_path), "b": Recorder(tmp_path)})
    with pytest.raises(OSError, match="disk full"):
        loggers.close()
    assert Recorder.calls[-1] == ("close",)


def test_a_logger_without_the_protocol_methods_is_refused(registry, tmp_path, monkeypatch):
    class Incomplete:
        def __init__(self, run_dir):
            Recorder.calls.append(("open", run_dir.name))

        def close(self):
            Recorder.calls.append(("close",))

    monkeypatch.setattr(sys.modules["fake_recorder_plugin"], "Recorder", Incomplete)
    with pytest.raises(PluginError, match="logger 'recorder' .*lacks a method"):
        open_loggers(["recorder"], tmp_path, registry, {"task": "t"})
    assert Recorder.calls == [("open", tmp_path.name), ("close",)]  # closed again


def test_check_plugin_names_a_logger_without_the_protocol_methods(registry, monkeypatch):
    module = sys.modules["fake_recorder_plugin"]
    check_plugin(module)  # the complete Recorder passes
    monkeypatch.setattr(module, "Recorder", type("Mute", (), {"close": lambda self: None}))
    with pytest.raises(AssertionError, match="lacks the Logger method.*log_config, log_figure"):
        check_plugin(module)


def test_loggers_option_from_set_and_config_file():
    rest, file_rest, names = take_loggers_option(
        [("steps", "3"), ("loggers", "tensorboard, mlflow")], {"loggers": ["jsonl"], "lr": 0.1}
    )
    assert rest == [("steps", "3")] and file_rest == {"lr": 0.1}
    assert names == ["jsonl", "tensorboard", "mlflow"]
    with pytest.raises(ConfigError, match="comma-separated string or a list"):
        take_loggers_option([], {"loggers": 3})


def test_flow_list_logger(capsys):
    assert main(["list", "logger"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("jsonl", "tensorboard", "mlflow"))
    assert "core.toy2d" not in out


@pytest.mark.parametrize(
    ("blocked", "logger", "message"),
    [
        (None, "tensorbord", "unknown logger 'tensorbord'; did you mean 'tensorboard'"),
        ("mlflow.tracking", "mlflow", "pip install 'flow-core[mlflow]'"),
        ("torch.utils.tensorboard", "tensorboard", "pip install 'flow-core[tensorboard]'"),
    ],
)
def test_bad_logger_exits_2_before_anything_starts(
    tmp_path, capsys, monkeypatch, blocked, logger, message
):
    if blocked is not None:
        monkeypatch.setitem(sys.modules, blocked, None)  # the import now fails
    out = tmp_path / "r"
    code = main(
        [
            "run",
            "core.toy2d",
            "--out",
            str(out),
            "--set",
            f"loggers={logger}",
            *TINY_SETS,
            "--no-progress",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_importing_core_leaves_the_optional_libraries_unloaded():
    code = (
        "import sys, flow_core.cli, flow_core.runner, flow_core.loggers;"
        "loaded = [m for m in ('mlflow', 'tensorboard', 'torch.utils.tensorboard')"
        " if m in sys.modules]; assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
