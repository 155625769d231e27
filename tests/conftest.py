"""Integration-test helpers: fake installed distributions and running the ``flow`` command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture
def flow_cli():
    """``flow_cli(*args, env=...)`` runs the ``flow`` command in a subprocess."""
    return run_flow


def run_flow(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m flow_core.cli ARGS`` in a subprocess and capture its output."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FLOW_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "flow_core.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def fake_dist(tmp_path: Path):
    """Create an installed distribution (a ``.dist-info`` with a ``flow.plugins`` entry point)
    plus its plugin module in one folder; returns a function giving the PYTHONPATH."""
    site = tmp_path / "site"
    site.mkdir()

    def make(dist: str, plugin: str, source: str) -> str:
        module = f"{dist.replace('-', '_')}_plugin"
        (site / f"{module}.py").write_text(source)
        info = site / f"{dist.replace('-', '_')}-0.0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.0.1\n")
        (info / "entry_points.txt").write_text(f"[flow.plugins]\n{plugin} = {module}\n")
        return str(site)

    return make
