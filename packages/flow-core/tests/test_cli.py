"""The ``flow`` command, in-process: output shapes, the run directory and exit codes."""

import json

import pytest

from flow_core.cli import main

SMALL = [
    "--set",
    "steps=60",
    "--set",
    "eval_samples=200",
    "--set",
    "hidden=32",
    "--set",
    "log_every=20",
    "--set",
    "checkpoint_every=30",
    "--no-progress",
]


def test_list_json_shape(capsys):
    assert main(["list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert all(set(r) == {"kind", "name", "plugin", "summary"} for r in rows)
    assert {"kind": "task", "name": "core.toy2d", "plugin": "core"}.items() <= next(
        r for r in rows if r["name"] == "core.toy2d"
    ).items()


def test_list_one_kind_and_plugins(capsys):
    assert main(["list", "samplers"]) == 0
    out = capsys.readouterr().out
    assert "euler" in out and "core.toy2d" not in out
    assert main(["plugins"]) == 0
    assert "flow-core" in capsys.readouterr().out


def test_info_shows_config_fields(capsys):
    assert main(["info", "core.toy2d"]) == 0
    out = capsys.readouterr().out
    assert "steps: int = 2000" in out and "target: str = 'eight-gaussians'" in out


def test_run_writes_run_directory(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "core.toy2d", "--out", str(out), "--seed", "3", *SMALL]) == 0
    assert {p.name for p in out.iterdir()} >= {
        "config.json",
        "metrics.json",
        "metrics.jsonl",
        "report.md",
        "figures",
        "checkpoints",
        "status.json",
    }
    config = json.loads((out / "config.json").read_text())
    assert config["seed"] == 3 and config["config"]["train"]["steps"] == 60
    metrics = json.loads((out / "metrics.json").read_text())
    assert all(isinstance(v, float) for v in metrics.values())
    assert json.loads((out / "status.json").read_text())["state"] == "finished"
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [20, 40, 60]
    report = (out / "report.md").read_text()
    assert "figures/samples.png" in report and (out / "figures" / "samples.png").stat().st_size > 0
    assert "run directory" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["run", "core.toy"], 2, "did you mean 'core.toy2d'"),
        (["run", "core.toy2d", "--set", "stpes=3"], 2, "unknown key 'stpes'"),
        (["run", "core.toy2d", "--set", "steps=many"], 2, "expected int"),
        (["run", "core.toy2d", "--set", "target=donut"], 2, "unknown target 'donut'"),
        (["run", "core.toy2d", "--config", "/nonexistent.toml"], 2, "does not exist"),
        (["run", "core.toy2d", "--device", "cuda:7"], 2, "cuda"),
        (["run", "core.toy2d", "--set", "sampler=rk99"], 2, "unknown sampler 'rk99'"),
        (["list", "gizmos"], 2, "unknown kind"),
        (["info", "nothing-here"], 2, "no component is called"),
        (["frobnicate"], 2, "invalid choice"),
    ],
)
def test_bad_input_one_line_and_exit_code(tmp_path, capsys, args, code, message):
    if args[0] == "run":
        args = [*args, "--out", str(tmp_path / "r"), "--no-progress"]
    result = main(args)
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert result == code
    assert not (tmp_path / "r").exists()  # nothing is started on bad input


def test_debug_shows_traceback(capsys):
    assert main(["run", "core.toy", "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_existing_out_is_refused_and_resume_checks_config(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "core.toy2d", "--out", str(out), *SMALL]) == 0
    assert main(["run", "core.toy2d", "--out", str(out), *SMALL]) == 2
    assert "--resume" in capsys.readouterr().err
    assert (
        main(["run", "core.toy2d", "--out", str(out), "--resume", *SMALL, "--set", "lr=0.5"]) == 2
    )
    assert "config differs" in capsys.readouterr().err


def test_corrupt_checkpoint_on_resume_is_a_runtime_error(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "core.toy2d", "--out", str(out), *SMALL]) == 0
    latest = out / "checkpoints" / (out / "checkpoints" / "latest").read_text()
    (latest / "weights.safetensors").write_bytes(b"\x00" * 10)
    assert main(["run", "core.toy2d", "--out", str(out), "--resume", *SMALL]) == 1
    assert "unreadable" in capsys.readouterr().err
    # a failed resume of a finished run leaves it finished
    assert json.loads((out / "status.json").read_text())["state"] == "finished"


def test_config_file_then_set_overrides(tmp_path):
    config = tmp_path / "toy.toml"
    config.write_text('target = "moons"\nsteps = 40\nhidden = 32\neval_samples = 200\n')
    out = tmp_path / "run"
    args = ["run", "core.toy2d", "--config", str(config), "--set", "steps=20", "--out", str(out)]
    assert main([*args, "--no-progress"]) == 0
    resolved = json.loads((out / "config.json").read_text())["config"]
    assert (resolved["target"], resolved["train"]["steps"], resolved["hidden"]) == ("moons", 20, 32)
    config.write_text("steps = 'many'\n")
    assert main(["run", "core.toy2d", "--config", str(config), "--out", str(tmp_path / "b")]) == 2
