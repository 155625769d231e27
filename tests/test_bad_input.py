"""Bad input of every kind: caught before training, one clear line, nothing else touched.

Each case runs the ``flow`` command in-process (``flow_core.cli.main``) and asserts the exit
status, exactly one ``flow: error:`` line naming the cause, no traceback, and that the run
directories that existed before are byte-identical afterwards. Concurrency and signals need
real processes and run the command in subprocesses.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from flow_core.cli import main
from flow_core.registry import get_registry

SMALL = {
    "steps": "20",
    "hidden": "16",
    "depth": "1",
    "batch_size": "32",
    "eval_samples": "100",
    "checkpoint_every": "10",
    "log_every": "10",
    "likelihood": "false",
}


def small(**changes: str) -> list[str]:
    """``--set`` arguments of the small toy2d config, with ``changes``."""
    args = ["--no-progress"]
    for key, value in {**SMALL, **changes}.items():
        args += ["--set", f"{key}={value}"]
    return args


def tree_hash(root: Path) -> str:
    """A digest of every path, file content and symlink target under ``root``."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_symlink():
            digest.update(b"->" + os.readlink(path).encode())
        elif path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def finished_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small finished toy2d run, trained once for the module."""
    out = tmp_path_factory.mktemp("template") / "run"
    assert main(["run", "core.toy2d", "--out", str(out), "--seed", "1", *small()]) == 0
    return out


@pytest.fixture
def runs(tmp_path: Path, finished_template: Path) -> Path:
    """``runs/core.toy2d/finished`` (a finished run) and ``.../stopped`` (interrupted)."""
    root = tmp_path / "runs" / "core.toy2d"
    shutil.copytree(finished_template, root / "finished", symlinks=True)
    stopped = root / "stopped"
    shutil.copytree(finished_template, stopped, symlinks=True)
    (stopped / "metrics.json").unlink()
    status = {"state": "interrupted", "started": "20260101-000000", "ended": "20260101-000100"}
    (stopped / "status.json").write_text(json.dumps(status))
    return tmp_path / "runs"


@pytest.fixture(autouse=True)
def _fresh_registry() -> Iterator[None]:
    get_registry.cache_clear()
    yield
    get_registry.cache_clear()


def refused(capsys: pytest.CaptureFixture[str], code: int, expected: int, *fragments: str) -> str:
    """Assert exit ``expected`` with one error line containing ``fragments``; return it."""
    err = capsys.readouterr().err
    assert code == expected, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("flow: error:")]
    assert len(errors) == 1, err
    assert all(line.startswith("flow: ") for line in err.splitlines()), err
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


# -- bad values of every field type of core.toy2d ---------------------------------------------

SET_CASES = [
    ("steps=many", "expected int"),  # int
    ("steps=1.5", "expected int"),
    ("steps=0", "steps must be >= 1"),
    ("lr=fast", "expected float"),  # float
    ("lr=-1", "lr must be > 0"),
    ("ema_decay=1", "ema_decay must be in [0, 1)"),
    ("likelihood=perhaps", "likelihood"),  # bool
    ("target=donut", "unknown target 'donut'"),  # str
    ("objective=nope", "unknown objective 'nope'"),  # str naming a component
    ("reflow_objective=nope", "unknown objective 'nope'"),
    ("flow=nope", "unknown flow 'nope'"),  # str | None
    ("sampler=rk99", "unknown sampler 'rk99'"),
    ("reflow_rounds=-1", "reflow_rounds must be >= 0"),
    ("stpes=3", "unknown key 'stpes'"),  # no such field
    ("steps", "expects key=value"),  # not an assignment
]


@pytest.mark.parametrize(("assignment", "fragment"), SET_CASES)
def test_bad_set_value(assignment, fragment, runs, tmp_path, capsys):
    before = tree_hash(runs)
    code = main(["run", "core.toy2d", "--out", str(tmp_path / "new"), "--set", assignment])
    refused(capsys, code, 2, fragment)
    assert tree_hash(runs) == before
    assert not (tmp_path / "new").exists()


def test_failure_before_the_first_step_leaves_no_run(runs, tmp_path, capsys, monkeypatch):
    # meanflow trains average-velocity models; reflow needs velocity ones: the task refuses
    # at its start, after the run directory was made
    monkeypatch.chdir(tmp_path)
    before = tree_hash(runs)
    code = main(["run", "core.toy2d", *small(objective="meanflow", reflow_rounds="1")])
    refused(capsys, code, 2, "reflow needs a velocity model")
    assert tree_hash(runs) == before  # the new run under runs/core.toy2d/ is gone again


@pytest.mark.parametrize("seed", ["-1", str(2**32)])
def test_bad_seed_leaves_no_run(seed, runs, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = tree_hash(runs)
    code = main(["run", "core.toy2d", "--seed", seed, *small()])
    refused(capsys, code, 2, "seed must be an integer")
    assert tree_hash(runs) == before


# -- bad files of every kind the command reads ------------------------------------------------

TOML_CASES = [
    (b"steps = = 3\n", "toml"),
    (b"steps = 'many'\n", "expected int"),
    (b"stpes = 3\n", "unknown key 'stpes'"),
    (b"\xff\xfe garbage", "toml"),
]


@pytest.mark.parametrize(("content", "fragment"), TOML_CASES)
def test_bad_toml_config(content, fragment, runs, tmp_path, capsys):
    config = tmp_path / "bad.toml"
    config.write_bytes(content)
    before = tree_hash(runs)
    code = main(["run", "core.toy2d", "--config", str(config), "--out", str(tmp_path / "new")])
    line = refused(capsys, code, 2, fragment)
    assert "toml" in line.lower() or "stpes" in line or "int" in line
    assert tree_hash(runs) == before
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("config", ["missing.toml", "."])
def test_toml_config_that_is_no_file(config, tmp_path, capsys):
    code = main(["run", "core.toy2d", "--config", str(tmp_path / config)])
    refused(capsys, code, 2, str(tmp_path))


def resume(run: Path, *extra: str) -> list[str]:
    return ["run", "core.toy2d", "--out", str(run), "--resume", "--seed", "1", *small(), *extra]


RUN_FILE_CASES = [
    ("config.json", b"{not json", 2, "config.json is not valid JSON"),
    ("config.json", b"[1, 2]", 2, "is not a JSON object"),
    ("config.json", b"\xff\xfe", 2, "config.json is not valid JSON"),
    ("status.json", b"garbage", 2, "status.json is not valid JSON"),
    ("status.json", b'{"state": "bogus"}', 2, "holds no valid state"),
    ("metrics.jsonl", b'{"step": 10}\n{"step": 2', 2, "metrics.jsonl line 2 is not JSON"),
    ("checkpoints/latest", b"", 1, "is empty"),
    ("checkpoints/latest", b"../../finished/checkpoints/step-00000020", 1, "a path"),
    ("checkpoints/latest", b"/etc/passwd", 1, "a path"),
    ("checkpoints/latest", b"step-00000099", 1, "missing or incomplete"),
    ("checkpoints/latest", b"..", 1, "a path"),
]


@pytest.mark.parametrize(("name", "content", "code", "fragment"), RUN_FILE_CASES)
def test_bad_file_in_a_resumed_run(name, content, code, fragment, runs, capsys):
    run = runs / "core.toy2d" / "stopped"
    if name == "checkpoints/latest":  # no complete step to fall back to
        for step in (run / "checkpoints").glob("step-*"):
            shutil.rmtree(step)
    (run / name).write_bytes(content)
    before = tree_hash(runs)
    line = refused(capsys, main(resume(run)), code, fragment)
    assert str(run) in line
    assert tree_hash(runs) == before


def test_latest_symlinked_out_of_the_run_is_not_followed(runs, capsys):
    run = runs / "core.toy2d" / "stopped"
    for step in (run / "checkpoints").glob("step-*"):
        shutil.rmtree(step)
    other = runs / "core.toy2d" / "finished" / "checkpoints" / "step-00000020"
    (run / "checkpoints" / "step-00000020").symlink_to(other)
    (run / "checkpoints" / "latest").write_text("step-00000020")
    before = tree_hash(runs)
    refused(capsys, main(resume(run)), 1, "a symlink")
    assert tree_hash(runs) == before


def test_broken_latest_falls_back_to_the_newest_complete_step(runs, capsys):
    run = runs / "core.toy2d" / "stopped"
    (run / "checkpoints" / "latest").write_text("../../finished/checkpoints/step-00000020")
    other = tree_hash(runs / "core.toy2d" / "finished")
    with pytest.warns(UserWarning, match="resuming from the newest complete checkpoint"):
        assert main(resume(run)) == 0
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
    assert tree_hash(runs / "core.toy2d" / "finished") == other


class Sneaky:
    """Pickled by reference: the safe loader must refuse it."""


CHECKPOINT_CASES = [
    ("state.pt", "unsafe", "was refused: unsafe pickle content"),
    ("state.pt", "garbage", "is unreadable"),
    ("state.pt", "list", "is not a dict"),
    ("weights.safetensors", "garbage", "unreadable"),
]


@pytest.mark.parametrize(("name", "kind", "fragment"), CHECKPOINT_CASES)
def test_bad_checkpoint_file(name, kind, fragment, runs, capsys):
    run = runs / "core.toy2d" / "stopped"
    step = run / "checkpoints" / "step-00000020"
    if kind == "unsafe":
        torch.save({"step": 3, "payload": Sneaky(), "call": os.getcwd}, step / name)
    elif kind == "list":
        torch.save([1, 2], step / name)
    else:
        (step / name).write_bytes(b"\x00garbage" * 4)
    before = tree_hash(runs)
    line = refused(capsys, main(resume(run)), 1, fragment, str(step))
    assert "weights_only" not in line  # never advice to switch the safe loading off
    assert tree_hash(runs) == before


def test_finished_run_stays_finished_after_a_failed_resume(runs, capsys):
    run = runs / "core.toy2d" / "finished"
    (run / "checkpoints" / "step-00000020" / "weights.safetensors").write_bytes(b"x")
    before = tree_hash(runs)
    refused(capsys, main(resume(run)), 1, "unreadable")
    assert tree_hash(runs) == before
    assert json.loads((run / "status.json").read_text())["state"] == "finished"


# -- broken run directories ---------------------------------------------------------------------


def test_out_is_a_file(runs, tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("mine")
    for out in (target, target / "sub"):
        code = main(["run", "core.toy2d", "--out", str(out), *small()])
        refused(capsys, code, 2, "is a file", str(target))
    assert target.read_text() == "mine"


def test_out_unwritable(capsys):
    # /sys refuses new folders even to root
    code = main(["run", "core.toy2d", "--out", "/sys/flow-test/run", *small()])
    refused(capsys, code, 2, "cannot write there", "/sys/flow-test/run")


@pytest.mark.parametrize(
    ("which", "extra", "fragment"),
    [
        ("finished", [], "already exists and is not empty"),
        ("nowhere", ["--resume"], "not a run directory"),
        ("empty", ["--resume"], "not a run directory"),
        ("stopped", ["--resume", "--set", "lr=0.5"], "config differs"),
    ],
)
def test_bad_out_for_run_or_resume(which, extra, fragment, runs, capsys):
    out = runs / "core.toy2d" / which
    if which == "empty":
        out.mkdir()
    before = tree_hash(runs)
    code = main(["run", "core.toy2d", "--out", str(out), "--seed", "1", *small(), *extra])
    refused(capsys, code, 2, fragment)
    assert tree_hash(runs) == before


def test_resume_without_out_picks_the_newest_resumable_run(runs, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = runs / "core.toy2d"
    shutil.copytree(root / "stopped", root / "zz-no-checkpoint")
    shutil.rmtree(root / "zz-no-checkpoint" / "checkpoints")
    shutil.copytree(root / "finished", root / "zz-finished")
    assert main(["run", "core.toy2d", "--resume", "--seed", "1", *small()]) == 0
    assert f"run directory: {Path('runs/core.toy2d/stopped')}" in capsys.readouterr().out
    shutil.rmtree(root / "stopped")
    refused(capsys, main(["run", "core.toy2d", "--resume", *small()]), 2, "no resumable run")


def test_a_run_in_use_is_refused(runs, capsys):
    run = runs / "core.toy2d" / "stopped"
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = {"pid": owner.pid, "host": os.uname().nodename, "since": "now"}
        (run / ".lock").write_text(json.dumps(lock))
        before = tree_hash(runs)
        refused(capsys, main(resume(run)), 2, "is in use", f"process {owner.pid}")
        assert tree_hash(runs) == before
    finally:
        owner.kill()
        owner.wait()
    # the owner is gone: its lock is stale and taken over
    with pytest.warns(UserWarning, match="taking over the stale lock"):
        assert main(resume(run)) == 0
    assert not (run / ".lock").exists()


def test_temporaries_of_interrupted_saves_are_removed(runs, capsys):
    run = runs / "core.toy2d" / "stopped"
    leftover = run / "checkpoints" / ".step-00000030.4242.tmp"
    leftover.mkdir()
    (leftover / "state.pt").write_bytes(b"half")
    (run / ".status.json.4242.tmp").write_text("{")
    assert main(resume(run)) == 0
    assert not leftover.exists() and not (run / ".status.json.4242.tmp").exists()


# -- broken plugins -----------------------------------------------------------------------------

BROKEN = "raise ImportError('no such thing')\n"
OUTSIDER = """
from flow_core import Component, hookimpl
FLOW_PLUGIN_API = 1
@hookimpl
def flow_register_tasks():
    return [Component("images.fake", "flow_core.tasks.toy2d:Toy2D", "not mine")]
"""
CLASH = """
from flow_core import Component, hookimpl
FLOW_PLUGIN_API = 1
@hookimpl
def flow_register_samplers():
    return [Component("euler", "flow_core.samplers.fixed_step:Euler", "mine too")]
"""


@pytest.fixture
def installed(fake_dist, monkeypatch) -> Iterator[object]:
    """``installed(dist, plugin, source)``: a fake distribution, visible in this process."""
    for var in ("FLOW_DISABLE_PLUGINS", "FLOW_LOAD_PLUGINS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("FLOW_STRICT_PLUGINS", "0")

    def install(dist: str, plugin: str, source: str) -> None:
        site = fake_dist(dist, plugin, source)
        if site not in sys.path:
            monkeypatch.syspath_prepend(site)

    yield install
    for name in [m for m in sys.modules if m.endswith("_plugin") and m.startswith("flow_")]:
        del sys.modules[name]


def test_strict_mode_lists_every_broken_plugin(installed, monkeypatch, capsys):
    installed("flow-one", "one", BROKEN)
    installed("flow-two", "two", BROKEN)
    monkeypatch.setenv("FLOW_STRICT_PLUGINS", "1")
    refused(capsys, main(["list"]), 1, "2 plugin(s) failed", "'one'", "'two'")


def test_task_outside_the_plugin_prefix(installed, monkeypatch, capsys):
    installed("flow-foo", "foo", OUTSIDER)
    monkeypatch.setenv("FLOW_STRICT_PLUGINS", "1")
    refused(capsys, main(["list"]), 1, "plugin 'foo' registers task 'images.fake'", "'foo.'")


def test_clash_stops_commands_but_plugins_shows_it(installed, capsys):
    installed("flow-copycat", "copycat", CLASH)
    refused(capsys, main(["list"]), 1, "sampler 'euler'", "flow-copycat", "flow-core")
    assert main(["plugins", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["copycat"]["status"] == "conflict" and "flow-core" in rows["copycat"]["error"]
    assert rows["core"]["status"] == "conflict" and "flow-copycat" in rows["core"]["error"]


# -- concurrent and interrupted runs (real processes) -------------------------------------------


def flow_process(*args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOW_")}
    env.update(OMP_NUM_THREADS="1", FLOW_LOAD_PLUGINS="none")  # core only: a faster start
    return subprocess.Popen(
        [sys.executable, "-m", "flow_core.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(path: Path, process: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.005)


def test_two_runs_into_one_directory_one_wins(tmp_path):
    out = tmp_path / "shared"
    args = ["run", "core.toy2d", "--out", str(out), *small(steps="200")]
    first, second = flow_process(*args), flow_process(*args)
    results = [(p.wait(timeout=300), p.communicate()[1]) for p in (first, second)]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert "Traceback" not in loser and len(loser.strip().splitlines()) == 1
    assert json.loads((out / "status.json").read_text())["state"] == "finished"


def test_sigterm_marks_the_run_interrupted(tmp_path, capsys):
    out = tmp_path / "runs" / "core.toy2d" / "a"
    process = flow_process("run", "core.toy2d", "--out", str(out), *small(steps="20000"))
    wait_for(out / "checkpoints" / "latest", process)
    process.terminate()
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert json.loads((out / "status.json").read_text())["state"] == "interrupted"
    assert not (out / ".lock").exists()
    assert main(["runs", "--root", str(tmp_path / "runs"), "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["status"], row["resumable"], row["task"]) == ("interrupted", True, "core.toy2d")


def test_killed_run_shows_interrupted_and_its_stale_lock_is_taken_over(tmp_path, capsys):
    out = tmp_path / "runs" / "core.toy2d" / "b"
    args = ["run", "core.toy2d", "--out", str(out), *small(steps="300")]
    process = flow_process(*args)
    wait_for(out / "checkpoints" / "latest", process)
    process.kill()
    process.wait()
    assert json.loads((out / "status.json").read_text())["state"] == "running"
    assert main(["runs", "core.toy2d", "--root", str(tmp_path / "runs")]) == 0
    assert "interrupted (resumable)" in capsys.readouterr().out
    with pytest.warns(UserWarning, match="taking over the stale lock"):
        assert main([*args, "--resume"]) == 0
    capsys.readouterr()
    assert main(["runs", "--root", str(tmp_path / "runs"), "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["status"], row["resumable"]) == ("finished", False)
    assert set(row["metrics"]) == {"sliced_w2", "mmd", "sliced_w2_source"}


KILLS = 20


def wait_for_new_checkpoint(run: Path, process: subprocess.Popen[str], before: str) -> None:
    """Wait until ``process`` wrote a checkpoint (``latest`` changed from ``before``)."""
    deadline = time.monotonic() + 300
    while read_latest(run) == before:
        assert process.poll() is None or read_latest(run) != before, process.communicate()
        assert time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.002)


def read_latest(run: Path) -> str:
    try:
        return (run / "checkpoints" / "latest").read_text()
    except OSError:
        return ""


def test_twenty_kills_then_resume_equals_an_uninterrupted_run(tmp_path):
    """SIGKILL at random moments of training, 20 times, then resume to the end: the final
    metrics.json (and the step log) are byte-identical to an uninterrupted run's. Each kill
    comes a random 0-0.1 s after the process wrote a checkpoint of its own, so every round
    trains a little and the kills land anywhere: in a step, a save, a log line."""
    chooser = random.Random(20261206)
    args = ["run", "core.toy2d", "--seed", "5", *small(steps="4000", checkpoint_every="20")]
    straight = flow_process(*args, "--out", str(tmp_path / "straight"))
    out = tmp_path / "killed"
    process = flow_process(*args, "--out", str(out))
    kills, before = 0, ""
    while kills < KILLS:
        wait_for_new_checkpoint(out, process, before)
        time.sleep(chooser.uniform(0.0, 0.1))
        if process.poll() is not None:  # it finished first: more steps are needed
            break
        process.kill()
        process.wait()
        kills += 1
        before = read_latest(out)
        process = flow_process(*args, "--out", str(out), "--resume")
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    assert kills == KILLS, f"the run ended after {kills} kills; give it more steps"
    _, err = straight.communicate(timeout=600)
    assert straight.returncode == 0, err
    for name in ("metrics.json", "metrics.jsonl"):
        assert (out / name).read_bytes() == (tmp_path / "straight" / name).read_bytes(), name
    assert json.loads((out / "status.json").read_text())["state"] == "finished"
    assert not list(out.rglob("*.tmp")) and not (out / ".lock").exists()
