"""Keep the documentation in step with the code and with mkdocs.yml."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from flow_core import Component, hookspecs
from flow_core.registry import load_first_party

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MKDOCS = ROOT / "mkdocs.yml"
HOOK_REFERENCE = DOCS / "plugins" / "hook-reference.md"


def hookspec_names() -> list[str]:
    return sorted(
        name
        for name, obj in vars(hookspecs).items()
        if name.startswith("flow_register_") and inspect.isfunction(obj)
    )


def headings(path: Path, level: int) -> set[str]:
    """The text of every heading of ``level`` in a markdown file, without backticks."""
    pattern = re.compile(rf"^{'#' * level}\s+(.+?)\s*$")
    found = set()
    in_code = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
            continue
        match = pattern.match(line)
        if match and not in_code:
            found.add(match.group(1).strip("` "))
    return found


def nav_pages() -> list[str]:
    """Every ``*.md`` path mentioned in the ``nav`` section of mkdocs.yml."""
    text = MKDOCS.read_text(encoding="utf-8")
    match = re.search(r"^nav:\s*\n((?:[ \t]+.*\n?|\s*\n)*)", text, flags=re.MULTILINE)
    assert match, "mkdocs.yml has no nav section"
    return re.findall(r"([\w./-]+\.md)\b", match.group(1))


def test_hookspecs_are_found():
    names = hookspec_names()
    assert "flow_register_tasks" in names
    assert all(hasattr(getattr(hookspecs, n), "flow_spec") for n in names)


def test_every_hookspec_has_a_heading_in_the_hook_reference():
    documented = headings(HOOK_REFERENCE, level=2)
    missing = [name for name in hookspec_names() if name not in documented]
    assert not missing, f"add a '## <name>' section to {HOOK_REFERENCE} for: {missing}"


def test_hook_reference_documents_no_hook_that_does_not_exist():
    documented = {h for h in headings(HOOK_REFERENCE, level=2) if h.startswith("flow_register_")}
    stale = sorted(documented - set(hookspec_names()))
    assert not stale, f"{HOOK_REFERENCE} documents hooks that flow_core.hookspecs lacks: {stale}"


def test_every_hook_has_an_example_in_its_docstring_and_in_the_hook_reference():
    sections = re.split(r"^## ", HOOK_REFERENCE.read_text(encoding="utf-8"), flags=re.MULTILINE)
    by_hook = {s.split("\n", 1)[0].strip("` "): s for s in sections[1:]}
    for name in hookspec_names():
        definition = f"def {name}("
        docstring = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert "Example" in docstring and definition in docstring, f"{name}: no example"
        assert f"```python\n@flow_core.hookimpl\n{definition}" in by_hook[name], name
        # the docstring's example names a real component: its target imports
        for target in re.findall(r'"([\w.]+:\w+)"', docstring):
            assert Component("example", target, "summary").load() is not None, target


def test_every_page_is_in_the_nav():
    pages = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    listed = set(nav_pages())
    missing = [page for page in pages if page not in listed]
    assert not missing, f"pages under docs/ missing from the nav of mkdocs.yml: {missing}"


def test_every_nav_entry_exists():
    absent = [page for page in nav_pages() if not (DOCS / page).is_file()]
    assert not absent, f"mkdocs.yml nav lists pages that do not exist: {absent}"


def test_the_first_party_table_in_the_docs_matches_the_shipped_file():
    row = re.compile(r"^\| `(flow-[a-z0-9-]+)` \| `([a-z0-9-]+)` \| (.*?) ?\|$")
    prefixes: dict[str, str] = {}
    components: dict[tuple[str, str], str] = {}
    for line in (DOCS / "packages" / "flow-core.md").read_text(encoding="utf-8").splitlines():
        match = row.match(line)
        if not match:
            continue
        distribution, prefix, cell = match.groups()
        prefixes[prefix] = distribution
        for part in filter(None, (p.strip() for p in cell.split(";"))):
            kind, _, names = part.partition(":")
            for name in re.findall(r"`([^`]+)`", names):
                components[(kind.strip(), name)] = distribution
    shipped = load_first_party()
    assert prefixes == shipped.task_prefixes
    assert components == shipped.components
