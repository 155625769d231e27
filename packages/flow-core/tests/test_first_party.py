"""The first-party table shipped with flow-core: what it says and how lookups use it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from flow_core.components import KINDS
from flow_core.errors import UnknownComponentError
from flow_core.plugins import load_plugins
from flow_core.registry import (
    FIRST_PARTY_DISTRIBUTIONS,
    FIRST_PARTY_TABLE,
    Registry,
    load_first_party,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_the_shipped_table_names_each_package_by_its_prefix():
    table = load_first_party()
    assert table.provider("norm", "power") == "flow-norms"
    assert table.provider("optimizer", "sgdp") == "flow-norms"
    assert table.provider("task", "sceneflow.optical") == "flow-sceneflow"
    assert table.provider("task", "core.toy2d") is None
    assert table.provider("flow", "power") is None  # listed names are per kind
    for prefix, distribution in table.task_prefixes.items():
        assert distribution == f"flow-{prefix}"  # distribution flow-<name>, tasks <name>.<task>
    assert {kind for kind, _ in table.components} <= set(KINDS)
    assert {"flow-core", *table.task_prefixes.values()} == FIRST_PARTY_DISTRIBUTIONS


def test_a_table_is_read_from_text():
    text = """
[[package]]
distribution = "flow-ocean"
task_prefix = "ocean"
components = { sampler = ["tidal"] }
"""
    table = load_first_party(text)
    assert table.provider("task", "ocean.waves") == "flow-ocean"
    assert table.provider("sampler", "tidal") == "flow-ocean"
    assert table.distributions == {"flow-ocean"}


def test_the_table_ships_in_the_wheel():
    package_data = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["setuptools"]
    assert FIRST_PARTY_TABLE in package_data["package-data"]["flow_core"]


def test_lookup_messages_name_the_package_to_install():
    registry = Registry(load_plugins(entry_points_=[]))
    with pytest.raises(
        UnknownComponentError,
        match=r"^unknown optimizer 'adamp'; did you mean 'adam' or 'adamw'\?; optimizer 'adamp' is"
        r" provided by flow-norms: "
        r"pip install flow-norms$",
    ):
        registry.get("optimizer", "adamp")
    with pytest.raises(UnknownComponentError, match="pip install flow-sceneflow$"):
        registry.get("task", "sceneflow.scoop")
    with pytest.raises(UnknownComponentError) as error:
        registry.get("task", "ocean.waves")
    assert "pip install" not in str(error.value)
