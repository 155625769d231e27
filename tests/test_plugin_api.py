"""First-party plugins import from flow-core only what it declares public.

The public API is ``flow_core.__all__`` plus the ``__all__`` of each module in
``flow_core.PUBLIC_MODULES``, the modules docs/plugins/api.md lists. Every plugin's source (and
the plugin template, rendered) is parsed with ``ast``; an import of another core module, or of
a name outside its module's ``__all__``, fails the test with the file and line.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

import flow_core

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_SOURCES = sorted(
    path for path in (ROOT / "packages").glob("flow-*/src") if path.parent.name != "flow-core"
)
API_PAGE = ROOT / "docs" / "plugins" / "api.md"


def _public_names(module: str) -> set[str]:
    return set(importlib.import_module(module).__all__)


def _attribute_chain(node: ast.Attribute) -> list[str] | None:
    """``["flow_core", "gpu", "unwrap"]`` for ``flow_core.gpu.unwrap``; None if not a chain."""
    parts: list[str] = []
    current: ast.expr = node
    while isinstance(current, ast.Attribute):
        parts.append(current.attr)
        current = current.value
    if not isinstance(current, ast.Name):
        return None
    return [current.id, *reversed(parts)]


def _check_chain(parts: list[str]) -> str | None:
    """Why the dotted use ``parts`` (rooted at flow_core) is not public, or None if it is."""
    module = parts[0]
    index = 1
    while index < len(parts) and f"{module}.{parts[index]}" in flow_core.PUBLIC_MODULES:
        module = f"{module}.{parts[index]}"
        index += 1
    if index < len(parts) and parts[index] not in _public_names(module):
        return f"{module}.{parts[index]} is not in {module}.__all__"
    return None


def core_import_problems(source: str, filename: str) -> list[str]:
    """Every use of a non-public part of flow-core in ``source``, as ``file:line: why``."""
    problems: list[str] = []
    public = flow_core.PUBLIC_MODULES

    def report(node: ast.AST, why: str) -> None:
        problems.append(f"{filename}:{getattr(node, 'lineno', '?')}: {why}")

    tree = ast.parse(source, filename=filename)
    inner_attributes: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            module = node.module
            if module.partition(".")[0] != "flow_core":
                continue
            if module not in public:
                report(node, f"{module} is not a public module (see flow_core.PUBLIC_MODULES)")
                continue
            for alias in node.names:
                if alias.name == "*":
                    report(node, f"'from {module} import *' hides what is used")
                elif alias.name not in _public_names(module) and (
                    f"{module}.{alias.name}" not in public
                ):
                    report(node, f"{alias.name} is not in {module}.__all__")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.partition(".")[0]
                if top == "flow_core" and alias.name not in public:
                    report(node, f"{alias.name} is not a public module")
        elif isinstance(node, ast.Attribute) and id(node) not in inner_attributes:
            inner: ast.expr = node.value
            while isinstance(inner, ast.Attribute):
                inner_attributes.add(id(inner))
                inner = inner.value
            parts = _attribute_chain(node)
            if parts and parts[0] == "flow_core":
                why = _check_chain(parts)
                if why:
                    report(node, why)
    return problems


def _render_template(out: Path) -> Path:
    spec = importlib.util.spec_from_file_location("new_plugin", ROOT / "tools" / "new_plugin.py")
    assert spec is not None and spec.loader is not None
    new_plugin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(new_plugin)
    rendered: Path = new_plugin.render("api-check", out)
    return rendered / "src"


def _python_files(root: Path) -> Iterator[Path]:
    yield from sorted(root.rglob("*.py"))


def _problems_under(root: Path) -> list[str]:
    problems: list[str] = []
    for path in _python_files(root):
        problems += core_import_problems(path.read_text(encoding="utf-8"), str(path))
    return problems


@pytest.mark.parametrize("source_root", PLUGIN_SOURCES, ids=lambda p: p.parent.name)
def test_first_party_plugins_import_only_public_core_names(source_root: Path):
    assert list(_python_files(source_root)), f"no Python files under {source_root}"
    assert _problems_under(source_root) == []


def test_the_plugin_template_imports_only_public_core_names(tmp_path: Path):
    source_root = _render_template(tmp_path)
    assert list(_python_files(source_root))
    assert _problems_under(source_root) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from flow_core.objectives.common import source_and_data", "is not a public module"),
        ("from flow_core.gpu import _wrappers", "_wrappers is not in flow_core.gpu.__all__"),
        ("from flow_core import plugins", "plugins is not in flow_core.__all__"),
        ("from flow_core.samplers import *", "hides what is used"),
        ("import flow_core.plugins", "flow_core.plugins is not a public module"),
        ("import flow_core\nflow_core.plugins.load_plugins()", "plugins is not in flow_core"),
        ("import flow_core.gpu\nflow_core.gpu._wrappers(m)", "_wrappers is not in flow_core.gpu"),
    ],
)
def test_the_check_finds_non_public_imports(source: str, expected: str):
    problems = core_import_problems(source, "plugin.py")
    assert len(problems) == 1, problems
    assert expected in problems[0]


def test_the_check_accepts_public_imports():
    source = "\n".join(
        [
            "import flow_core",
            "import flow_core.gpu",
            "from flow_core import Component, gpu, hookimpl",
            "from flow_core.objectives import source_and_data",
            "from flow_core.runner import RunContext",
            "from flow_images.data import load_dataset",
            "flow_core.hookimpl, flow_core.gpu.unwrap, flow_core.FlowError",
        ]
    )
    assert core_import_problems(source, "plugin.py") == []


def test_every_public_module_declares_existing_names():
    for name in flow_core.PUBLIC_MODULES:
        module = importlib.import_module(name)
        assert isinstance(module.__all__, list | tuple), name
        missing = [n for n in module.__all__ if not hasattr(module, n)]
        assert missing == [], f"{name}.__all__ names what it does not define: {missing}"


def test_a_public_name_means_one_object():
    # e.g. one `unwrap`: two public modules may export a name only if it is the same object
    seen: dict[str, tuple[str, object]] = {}
    clashes = []
    for name in flow_core.PUBLIC_MODULES:
        module: types.ModuleType = importlib.import_module(name)
        for attribute in module.__all__:
            value = getattr(module, attribute)
            if attribute in seen and seen[attribute][1] is not value:
                clashes.append(f"{seen[attribute][0]}.{attribute} and {name}.{attribute}")
            seen.setdefault(attribute, (name, value))
    assert clashes == []


def test_the_api_page_lists_exactly_the_public_modules():
    listed = re.findall(r"^\| `(flow_core[\w.]*)` \|", API_PAGE.read_text("utf-8"), re.MULTILINE)
    assert sorted(listed) == sorted(flow_core.PUBLIC_MODULES)
