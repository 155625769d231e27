"""The plugin template renders a complete, correctly named, loadable plugin package.

The nox ``template`` session goes further: it pip-installs the rendered package, runs its own
tests and runs its example task through the ``flow`` command.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from flow_core.testing import check_plugin, isolated_registry, run_task

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "new_plugin.py"
TEMPLATE = ROOT / "tools" / "plugin-template"

EXPECTED_FILES = {
    ".github/workflows/tests.yml",
    ".gitignore",
    "README.md",
    "pyproject.toml",
    "src/flow_ocean_waves/__init__.py",
    "src/flow_ocean_waves/metrics.py",
    "src/flow_ocean_waves/networks/__init__.py",
    "src/flow_ocean_waves/networks/affine.py",
    "src/flow_ocean_waves/plugin.py",
    "src/flow_ocean_waves/py.typed",
    "src/flow_ocean_waves/tasks/__init__.py",
    "src/flow_ocean_waves/tasks/example.py",
    "tests/test_plugin.py",
}


def _load_script() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("new_plugin", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


new_plugin = _load_script()


@pytest.fixture
def rendered(tmp_path: Path) -> Path:
    return new_plugin.render("ocean-waves", tmp_path)


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def _run_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=False
    )


def test_template_files_are_not_live_code():
    # Real .py or pyproject.toml files would be collected, linted or packaged by tools
    # working on this repository; the template keeps them as *.tmpl.
    names = [p.name for p in TEMPLATE.rglob("*") if p.is_file()]
    assert names
    assert not [n for n in names if n.endswith((".py", ".toml", ".md", ".yml"))]


def test_render_creates_the_expected_tree(rendered: Path, tmp_path: Path):
    assert rendered == tmp_path / "flow-ocean-waves"
    assert _files(rendered) == EXPECTED_FILES
    # nothing left behind beside the package (no staging folder)
    assert [p.name for p in tmp_path.iterdir()] == ["flow-ocean-waves"]


def test_names_are_substituted_everywhere(rendered: Path):
    for path in rendered.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            for key in ("name", "module", "dist"):
                assert "{{" + key + "}}" not in text, f"{path}: {{{{{key}}}}} left"
    plugin = (rendered / "src/flow_ocean_waves/plugin.py").read_text(encoding="utf-8")
    assert "FLOW_PLUGIN_API = 1" in plugin
    assert '"ocean-waves.example"' in plugin
    assert '"flow_ocean_waves.tasks.example:ExampleTask"' in plugin
    assert "pytest" not in plugin and "torch" not in plugin  # hook implementations only
    task = (rendered / "src/flow_ocean_waves/tasks/example.py").read_text(encoding="utf-8")
    assert '"ocean-affine"' not in task
    assert 'flow: str = component("flow", "ocean-waves-affine")' in task
    # GitHub Actions expressions are not placeholders and survive rendering
    workflow = (rendered / ".github/workflows/tests.yml").read_text(encoding="utf-8")
    assert "${{ matrix.python-version }}" in workflow
    assert "flow run ocean-waves.example" in workflow


def test_python_files_compile(rendered: Path):
    for path in rendered.rglob("*.py"):
        compile(path.read_text(encoding="utf-8"), str(path), "exec")


def test_pyproject_parses_and_declares_the_plugin(rendered: Path):
    data = tomllib.loads((rendered / "pyproject.toml").read_text(encoding="utf-8"))
    project = data["project"]
    assert project["name"] == "flow-ocean-waves"
    assert data["build-system"]["build-backend"] == "setuptools.build_meta"
    core = [d for d in project["dependencies"] if d.replace(" ", "").startswith("flow-core")]
    assert core == ["flow-core>=0.1,<0.2"]  # a range, never a pin
    assert project["entry-points"]["flow.plugins"] == {"ocean-waves": "flow_ocean_waves.plugin"}
    assert project["optional-dependencies"]["test"] == ["pytest>=7.4"]
    assert data["tool"]["setuptools"]["package-data"] == {"flow_ocean_waves": ["py.typed"]}


@pytest.mark.parametrize(
    ("name", "module"),
    [("ocean", "flow_ocean"), ("my-plugin", "flow_my_plugin"), ("a1-b2-c3", "flow_a1_b2_c3")],
)
def test_valid_names(name: str, module: str, tmp_path: Path):
    root = new_plugin.render(name, tmp_path)
    assert root.name == f"flow-{name}"
    assert (root / "src" / module / "plugin.py").is_file()


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Ocean",
        "ocean_waves",
        "ocean--waves",
        "-ocean",
        "ocean-",
        "1ocean",
        "ocean.waves",
        "ocean waves",
        "océan",
        "core",
        "images",
        "norms",
    ],
)
def test_bad_names_are_refused(name: str, tmp_path: Path):
    with pytest.raises(new_plugin.TemplateError):
        new_plugin.render(name, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_existing_folder_is_not_overwritten(tmp_path: Path):
    existing = tmp_path / "flow-ocean"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(new_plugin.TemplateError, match="already exists"):
        new_plugin.render("ocean", tmp_path)
    assert _files(existing) == {"keep.txt"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flow-ocean"]


def test_unknown_placeholder_is_an_error_and_leaves_nothing(tmp_path: Path):
    template = tmp_path / "template"
    (template / "src").mkdir(parents=True)
    (template / "README.md.tmpl").write_text("# {{dist}}\n", encoding="utf-8")
    (template / "src" / "x.py.tmpl").write_text("{{nmae}}\n", encoding="utf-8")
    out = tmp_path / "out"
    with pytest.raises(new_plugin.TemplateError, match="nmae"):
        new_plugin.render("ocean", out, template=template)
    assert list(out.iterdir()) == []


def test_cli_renders_and_then_refuses_to_overwrite(tmp_path: Path):
    first = _run_script("ocean", "--out", str(tmp_path))
    assert first.returncode == 0, first.stderr
    assert "created" in first.stdout
    assert (tmp_path / "flow-ocean" / "pyproject.toml").is_file()
    second = _run_script("ocean", "--out", str(tmp_path))
    assert second.returncode == 2
    assert "already exists" in second.stderr


def test_cli_refuses_a_bad_name(tmp_path: Path):
    result = _run_script("Bad_Name", "--out", str(tmp_path))
    assert result.returncode == 2
    assert "invalid plugin name" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def rendered_module(rendered: Path) -> Iterator[types.ModuleType]:
    """The rendered plugin module, imported from the rendered tree (not installed)."""
    sys.path.insert(0, str(rendered / "src"))
    try:
        yield importlib.import_module("flow_ocean_waves.plugin")
    finally:
        sys.path.remove(str(rendered / "src"))
        for name in [m for m in sys.modules if m.split(".")[0] == "flow_ocean_waves"]:
            del sys.modules[name]


def test_rendered_plugin_passes_the_conformance_check(rendered_module: types.ModuleType):
    check_plugin(rendered_module)
    registry = isolated_registry(rendered_module)
    assert "ocean-waves.example" in registry.names("task")
    assert "ocean-waves-affine" in registry.names("flow")


def test_rendered_example_task_learns(rendered_module: types.ModuleType, tmp_path: Path):
    registry = isolated_registry(rendered_module)
    metrics = run_task("ocean-waves.example", tmp_path / "run", registry=registry)
    assert metrics["w2"] < 0.15 < metrics["w2_source"]
    assert (tmp_path / "run" / "figures" / "histogram.png").is_file()


def _install_step(workflow: str) -> tuple[str, list[str]]:
    """The ``FLOW_CORE`` value and the shell lines of the workflow's Install step."""
    step = workflow.split("- name: Install", 1)[1].split("- name:", 1)[0]
    env = re.search(r'FLOW_CORE: "([^"]+)"', step)
    assert env is not None, step
    commands = step.split("run: |", 1)[1]
    return env.group(1), [line.strip() for line in commands.splitlines() if line.strip()]


def test_ci_installs_flow_core_from_the_monorepo(tmp_path: Path):
    source = "git+https://example.org/team/flow.git@v0.1.0#subdirectory=packages/flow-core"
    root = new_plugin.render("ocean", tmp_path, flow_core=source)
    workflow = (root / ".github/workflows/tests.yml").read_text(encoding="utf-8")
    value, commands = _install_step(workflow)
    assert value == source
    assert commands.index('pip install "$FLOW_CORE"') < commands.index('pip install -e ".[test]"')
    assert f'pip install "{source}"' in (root / "README.md").read_text(encoding="utf-8")
    assert "subdirectory=packages/flow-core" in new_plugin.default_flow_core() or Path(
        new_plugin.default_flow_core()
    ) == (ROOT / "packages" / "flow-core")


def test_ci_install_step_installs_flow_core_from_a_local_path(tmp_path: Path):
    """Run the workflow's own ``pip install "$FLOW_CORE"`` line with a local path (into a
    target folder, offline: the dependencies are this environment's)."""
    local = str(ROOT / "packages" / "flow-core")
    root = new_plugin.render("ocean", tmp_path, flow_core=local)
    value, commands = _install_step(
        (root / ".github/workflows/tests.yml").read_text(encoding="utf-8")
    )
    [line] = [c for c in commands if "$FLOW_CORE" in c]
    target = tmp_path / "target"
    env = {
        **os.environ,
        "FLOW_CORE": value,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PIP_TARGET": str(target),
        "PIP_NO_DEPS": "1",
        "PIP_NO_BUILD_ISOLATION": "0",
        "PIP_NO_INDEX": "1",
        "PIP_QUIET": "1",
    }
    result = subprocess.run(
        ["bash", "-c", line], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    installed = target / "flow_core" / "cli.py"
    assert installed.read_text() == (Path(local) / "src/flow_core/cli.py").read_text()
