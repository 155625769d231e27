"""Run directories: atomic creation, the lock, forward-only status, cleanup, ``flow runs``."""

import json
import os
import socket
import subprocess
import sys

import pytest

from flow_core.errors import ConfigError, UsageError
from flow_core.rundir import RunWarning, open_run, read_status
from flow_core.runs import format_runs, list_runs
from flow_core.testing import run_task


def test_default_runs_get_distinct_directories(tmp_path):
    first = open_run("core.toy2d", None, False, tmp_path)
    second = open_run("core.toy2d", None, False, tmp_path)
    assert first.path != second.path and first.path.parent == second.path.parent
    assert first.created and (first.path / ".lock").exists()
    first.unlock()
    second.unlock()
    assert not (first.path / ".lock").exists()


def test_lock_is_exclusive_and_stale_locks_are_taken_over(tmp_path):
    out = tmp_path / "run"
    holder = open_run("core.toy2d", out, False, tmp_path)
    holder.start({"task": "core.toy2d"})
    with pytest.raises(UsageError, match=f"process {os.getpid()} on"):
        open_run("core.toy2d", out, True, tmp_path)
    holder.unlock()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    stale = {"pid": int(dead.stdout), "host": socket.gethostname()}
    (out / ".lock").write_text(json.dumps(stale))
    with pytest.warns(RunWarning, match="stale lock"):
        run = open_run("core.toy2d", out, True, tmp_path)
    assert json.loads((out / ".lock").read_text())["pid"] == os.getpid()
    run.unlock()


def test_status_moves_forward_and_a_finished_run_stays_finished(tmp_path):
    out = tmp_path / "run"
    run = open_run("core.toy2d", out, False, tmp_path)
    run.start({"task": "core.toy2d"})
    (out / "metrics.jsonl").write_text('{"step": 1}\n')  # something worth keeping
    run.abandon(KeyboardInterrupt())
    assert read_status(out)["state"] == "interrupted"
    again = open_run("core.toy2d", out, True, tmp_path)
    again.start({"task": "core.toy2d"})
    assert read_status(out)["state"] == "running"
    again.finish()
    assert read_status(out)["state"] == "finished"
    rerun = open_run("core.toy2d", out, True, tmp_path)
    rerun.start({"task": "core.toy2d"})
    rerun.abandon(RuntimeError("boom"))
    assert read_status(out)["state"] == "finished"


def test_a_run_with_nothing_in_it_is_removed_on_failure(tmp_path):
    fresh = open_run("core.toy2d", tmp_path / "new", False, tmp_path)
    fresh.start({"task": "core.toy2d"})
    fresh.abandon(ValueError("bad"))
    assert not fresh.path.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    kept = open_run("core.toy2d", empty, False, tmp_path)
    kept.start({"task": "core.toy2d"})
    kept.abandon(ValueError("bad"))
    assert empty.is_dir() and not list(empty.iterdir())  # it existed: emptied, not removed


def test_garbled_status_is_a_config_error_and_shows_as_unknown(tmp_path):
    run = tmp_path / "core.toy2d" / "x"
    run.mkdir(parents=True)
    (run / "status.json").write_text("{")
    with pytest.raises(ConfigError, match="status.json is not valid JSON"):
        read_status(run)
    [row] = list_runs(tmp_path)
    assert (row["status"], row["resumable"]) == ("unknown", False)
    assert "unknown" in format_runs([row])[1]


def test_run_task_accepts_a_str_path(tmp_path):
    sets = {"steps": 10, "hidden": 8, "depth": 1, "eval_samples": 50, "likelihood": False}
    metrics = run_task("core.toy2d", str(tmp_path / "run"), sets)
    assert "sliced_w2" in metrics
    assert read_status(tmp_path / "run")["state"] == "finished"
    assert list_runs(tmp_path / "nothing") == []
