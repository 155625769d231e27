"""The plugin and its three tasks end to end, on generated records and a tiny capture."""

from __future__ import annotations

import json
from importlib.metadata import entry_points
from pathlib import Path

import pandas as pd
import pytest
from test_pcap import write_capture

import flow_nids.plugin
from flow_core.errors import ConfigError
from flow_core.testing import check_plugin, isolated_registry, run_task

SMALL = {
    "data": "synthetic:4000",
    "steps": 60,
    "batch_size": 64,
    "eval_every": 0,
    "checkpoint_every": 30,
}


def test_plugin_conforms_and_registers_its_tasks(flow_registry):
    check_plugin(flow_nids.plugin)
    registry = flow_registry(flow_nids.plugin)
    assert {"nids.flowtransformer", "nids.sweep", "nids.detect"} <= set(registry.names("task"))


def test_entry_point_is_declared():
    found = [ep for ep in entry_points(group="flow.plugins") if ep.name == "nids"]
    assert found and found[0].value == "flow_nids.plugin"


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float]]:
    run = tmp_path_factory.mktemp("ft") / "run"
    metrics = run_task(
        "nids.flowtransformer", run, overrides=SMALL, registry=isolated_registry(flow_nids.plugin)
    )
    return run, metrics


def test_short_training_beats_chance_on_a_separable_set(trained_run):
    run, metrics = trained_run
    # chance: balanced accuracy 0.5; F1 of always-attack = 2p/(1+p) with p the attack share
    assert metrics["balanced_accuracy"] > 0.85
    assert metrics["f1"] > 0.7
    assert metrics["parameters"] > 1000 and metrics["inference_flows_per_s"] > 0
    assert {"recall/PortScan", "random-forest/f1", "hist-gradient-boosting/f1"} <= set(metrics)
    assert (run / "figures" / "confusion.png").exists()
    assert (run / "detector" / "model.pt").exists()
    report = (run / "report.md").read_text()
    assert "Flows per class and part" in report and "random-forest" in report
    assert json.loads((run / "metrics.json").read_text()) == pytest.approx(metrics)


def test_flow_eval_reloads_the_weights(trained_run):
    from flow_core.evaluation import evaluate_run

    run, metrics = trained_run
    _, again = evaluate_run(
        run, registry=isolated_registry(flow_nids.plugin), device="cpu", show_progress=False
    )
    for key in ("f1", "balanced_accuracy", "precision", "recall", "parameters"):
        assert again[key] == metrics[key]


def test_detect_gives_one_verdict_per_flow_of_a_capture(trained_run, tmp_path: Path):
    run, _ = trained_run
    capture = write_capture(tmp_path / "tiny.pcap")
    out = tmp_path / "detect"
    metrics = run_task(
        "nids.detect",
        out,
        overrides={"run": str(run), "data": str(capture)},
        registry=isolated_registry(flow_nids.plugin),
    )
    verdicts = pd.read_csv(out / "verdicts.csv")
    assert len(verdicts) == metrics["flows"] == 7
    assert set(verdicts["verdict"]) <= {"attack", "benign"}
    assert verdicts["p_attack"].between(0, 1).all()
    assert verdicts["L4_DST_PORT"].tolist()[2:] == [21, 22, 23, 25, 80]
    assert metrics["flagged"] == (verdicts["verdict"] == "attack").sum()


def test_detect_scores_a_labelled_csv(trained_run, tmp_path: Path, records: pd.DataFrame):
    run, _ = trained_run
    records.tail(500).to_csv(tmp_path / "flows.csv", index=False)
    metrics = run_task(
        "nids.detect",
        tmp_path / "out",
        overrides={"run": str(run), "data": str(tmp_path / "flows.csv")},
        registry=isolated_registry(flow_nids.plugin),
    )
    assert metrics["flows"] == 500 and metrics["balanced_accuracy"] > 0.8


def test_user_csv_and_its_errors_reach_the_task(tmp_path: Path, csv_file: Path):
    registry = isolated_registry(flow_nids.plugin)
    small = {**SMALL, "data": str(csv_file), "steps": 5, "baselines": "false"}
    metrics = run_task("nids.flowtransformer", tmp_path / "ok", overrides=small, registry=registry)
    assert metrics["test_flows"] == 900 - 7
    bad = pd.read_csv(csv_file).drop(columns=["TCP_FLAGS"])
    bad.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ConfigError, match="missing column.*TCP_FLAGS"):
        run_task(
            "nids.flowtransformer",
            tmp_path / "bad",
            overrides={**small, "data": str(tmp_path / "bad.csv")},
            registry=registry,
        )
    with pytest.raises(ConfigError, match="head='mean' is unknown"):
        run_task(
            "nids.flowtransformer", tmp_path / "h", overrides={"head": "mean"}, registry=registry
        )


def test_sweep_tabulates_heads_by_encodings(tmp_path: Path):
    metrics = run_task(
        "nids.sweep",
        tmp_path,
        overrides={
            "data": "synthetic:3000",
            "encodings": "record,categorical-lookup",
            "heads": "last-token,gap",
            "steps": 10,
            "batch_size": 32,
            "baselines": "false",
        },
        registry=isolated_registry(flow_nids.plugin),
    )
    cells = {k.rsplit("/", 1)[0] for k in metrics if k.endswith("/f1")}
    assert cells == {
        "record/last-token",
        "record/gap",
        "categorical-lookup/last-token",
        "categorical-lookup/gap",
    }
    assert (tmp_path / "checkpoints" / "record-gap").is_dir()
    assert "Heads × encodings" in (tmp_path / "report.md").read_text()
