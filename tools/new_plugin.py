#!/usr/bin/env python3
"""Render ``tools/plugin-template`` into a new, standalone flow plugin package.

Usage::

    python tools/new_plugin.py NAME [--out DIR] [--flow-core REQUIREMENT]

creates ``DIR/flow-NAME/`` (``DIR`` defaults to the current directory): a pip-installable
distribution ``flow-NAME`` with the import package ``flow_NAME`` and the entry point ``NAME``
in the group ``flow.plugins``. The folder must not exist yet.

How the template works: every file under ``tools/plugin-template`` is copied; in file contents
and in path parts, the placeholders ``{{name}}`` (plugin name, ``my-plugin``), ``{{module}}``
(import package, ``flow_my_plugin``), ``{{dist}}`` (distribution, ``flow-my-plugin``) and
``{{flow_core}}`` (the pip requirement the plugin's CI installs flow-core from) are
replaced, and a trailing ``.tmpl`` is dropped from file names (it keeps linters, pytest and
packaging tools from treating the template as real code). An unknown placeholder is an error.

Only the standard library is used, so this runs before anything is installed.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

TEMPLATE_DIR = Path(__file__).resolve().parent / "plugin-template"
REPO_ROOT = Path(__file__).resolve().parents[1]
SUFFIX = ".tmpl"

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
"""Lowercase letters and digits, starting with a letter; single hyphens between parts."""

RESERVED = {
    "core": "it is flow-core's built-in plugin",
    "images": "flow-images is a first-party package",
    "robotics": "flow-robotics is a first-party package",
    "physics": "flow-physics is a first-party package",
    "sceneflow": "flow-sceneflow is a first-party package",
    "nids": "flow-nids is a first-party package",
    "norms": "flow-norms is a first-party package",
}

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_SKIP = {"__pycache__", ".DS_Store"}


class TemplateError(Exception):
    """The name is invalid, the destination exists, or the template is broken."""


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid plugin name, else raise :class:`TemplateError`."""
    if not NAME_PATTERN.match(name):
        raise TemplateError(
            f"invalid plugin name {name!r}: use lowercase letters and digits, starting with a"
            " letter, with single '-' between parts (e.g. 'ocean' or 'my-plugin')"
        )
    if name in RESERVED:
        raise TemplateError(f"the plugin name {name!r} is taken: {RESERVED[name]}")
    return name


def default_flow_core() -> str:
    """Where a plugin's CI installs flow-core from: this checkout's ``origin`` as a git URL
    (``git+URL#subdirectory=packages/flow-core``), else this checkout's local path."""
    try:
        url = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "remote", "get-url", "origin"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        url = ""
    if url.startswith(("https://", "ssh://", "git@")):
        url = url if url.startswith(("https://", "ssh://")) else "ssh://" + url.replace(":", "/")
        return f"git+{url}#subdirectory=packages/flow-core"
    return str(REPO_ROOT / "packages" / "flow-core")


def placeholders(name: str, flow_core: str | None = None) -> dict[str, str]:
    """The values substituted into the template for plugin ``name``."""
    return {
        "name": name,
        "module": "flow_" + name.replace("-", "_"),
        "dist": "flow-" + name,
        "flow_core": flow_core or default_flow_core(),
    }


def substitute(text: str, values: dict[str, str], where: str) -> str:
    """Replace every ``{{key}}`` in ``text``; an unknown key is a :class:`TemplateError`."""

    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise TemplateError(
                f"{where}: unknown placeholder {{{{{key}}}}}; known: {', '.join(sorted(values))}"
            )
        return values[key]

    return _PLACEHOLDER.sub(replace, text)


def template_files(template: Path = TEMPLATE_DIR) -> list[Path]:
    """Every file of the template, relative to its root, in a stable order."""
    files = []
    for path in sorted(template.rglob("*")):
        relative = path.relative_to(template)
        if path.is_file() and not _SKIP.intersection(relative.parts):
            files.append(relative)
    return files


def render(
    name: str, out: Path, template: Path = TEMPLATE_DIR, flow_core: str | None = None
) -> Path:
    """Render the template for plugin ``name`` into ``out/flow-<name>`` and return that path.

    The tree is written into a temporary folder beside the destination and renamed into place
    at the end, so a failure leaves nothing half-written.

    ``flow_core`` is the pip requirement the plugin's CI installs flow-core from (default:
    :func:`default_flow_core`).

    Raises:
        TemplateError: invalid name, existing destination, or a broken template.
    """
    validate_name(name)
    values = placeholders(name, flow_core)
    out = Path(out)
    destination = out / values["dist"]
    if destination.exists():
        raise TemplateError(f"{destination} already exists; refusing to overwrite it")
    if not template.is_dir():
        raise TemplateError(f"template folder {template} not found")

    out.mkdir(parents=True, exist_ok=True)
    staging = out / f".{values['dist']}.partial-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        for relative in template_files(template):
            parts = [substitute(part, values, str(relative)) for part in relative.parts]
            if parts[-1].endswith(SUFFIX):
                parts[-1] = parts[-1][: -len(SUFFIX)]
            target = staging.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            text = (template / relative).read_text(encoding="utf-8")
            target.write_text(substitute(text, values, str(relative)), encoding="utf-8")
        if destination.exists():
            raise TemplateError(f"{destination} already exists; refusing to overwrite it")
        staging.rename(destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return destination


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="new_plugin.py",
        description="Create a standalone flow plugin package flow-NAME from the template.",
    )
    parser.add_argument("name", metavar="NAME", help="plugin name, e.g. 'ocean' or 'my-plugin'")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path.cwd(),
        metavar="DIR",
        help="folder to create flow-NAME/ in (default: the current directory)",
    )
    parser.add_argument(
        "--flow-core",
        metavar="REQUIREMENT",
        help="pip requirement the plugin's CI installs flow-core from, e.g."
        " git+https://HOST/OWNER/flow.git#subdirectory=packages/flow-core (default: this"
        " checkout's origin remote, else its local path)",
    )
    args = parser.parse_args(argv)
    try:
        destination = render(args.name, args.out, flow_core=args.flow_core)
    except TemplateError as error:
        print(f"new_plugin.py: error: {error}", file=sys.stderr)
        return 2
    values = placeholders(args.name, args.flow_core)
    print(f"created {destination}")
    print("next steps:")
    print(f"  cd {destination}")
    print(f'  pip install "{values["flow_core"]}"')
    print('  pip install -e ".[test]"')
    print("  pytest")
    print("  flow list task")
    print(f"  flow run {values['name']}.example --out runs/example")
    return 0


if __name__ == "__main__":
    sys.exit(main())
