"""Plugin discovery through real installed distributions, seen from the ``flow`` command."""

import json

GOOD = """
from flow_core import Component, hookimpl
FLOW_PLUGIN_API = 1

@hookimpl
def flow_register_samplers():
    return [Component("fancy", "flow_core.samplers.fixed_step:Euler", "a third-party sampler")]
"""

BROKEN = "import a_module_that_does_not_exist\n"

CLASH = """
from flow_core import Component, hookimpl
FLOW_PLUGIN_API = 1

@hookimpl
def flow_register_samplers():
    return [Component("euler", "flow_core.samplers.fixed_step:Euler", "mine")]
"""


def test_every_installed_plugin_is_discovered_and_loads(flow_cli):
    result = flow_cli("plugins", "--json", env={"FLOW_STRICT_PLUGINS": "1"})
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    assert plugins["core"]["status"] == "loaded"
    assert all(p["status"] == "loaded" for p in plugins.values()), plugins
    listed = json.loads(flow_cli("list", "--json").stdout)
    assert {"kind", "name", "plugin", "summary"} == set(listed[0])
    assert {(c["kind"], c["name"]) for c in listed} >= {
        ("objective", "cfm"),
        ("task", "core.toy2d"),
    }


def test_third_party_distribution_is_listed(fake_dist, flow_cli):
    path = fake_dist("flow-fancy", "fancy", GOOD)
    result = flow_cli("list", "sampler", "--json", env={"PYTHONPATH": path})
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["fancy"]["plugin"] == "fancy"
    plugins = json.loads(flow_cli("plugins", "--json", env={"PYTHONPATH": path}).stdout)
    fancy = next(p for p in plugins if p["name"] == "fancy")
    assert (fancy["distribution"], fancy["version"]) == ("flow-fancy", "0.0.1")


def test_broken_distribution_warns_and_cli_keeps_working(fake_dist, flow_cli):
    path = fake_dist("flow-broken", "broken", BROKEN)
    result = flow_cli("list", env={"PYTHONPATH": path})
    assert result.returncode == 0, result.stderr
    assert "core.toy2d" in result.stdout
    warning = [line for line in result.stderr.splitlines() if "broken" in line]
    assert len(warning) == 1
    assert "skipping plugin 'broken' (flow-broken 0.0.1)" in warning[0]
    assert "ModuleNotFoundError" in warning[0]
    strict = flow_cli("list", env={"PYTHONPATH": path, "FLOW_STRICT_PLUGINS": "1"})
    assert strict.returncode == 1
    assert "FLOW_STRICT_PLUGINS" in strict.stderr and "Traceback" not in strict.stderr
    disabled = flow_cli(
        "list",
        env={"PYTHONPATH": path, "FLOW_STRICT_PLUGINS": "1", "FLOW_DISABLE_PLUGINS": "broken"},
    )
    assert disabled.returncode == 0, disabled.stderr


def test_name_clash_is_reported_with_both_distributions(fake_dist, flow_cli):
    path = fake_dist("flow-clash", "clash", CLASH)
    result = flow_cli("list", env={"PYTHONPATH": path})
    assert result.returncode == 1
    message = result.stderr.strip()
    assert "sampler 'euler'" in message and "flow-core" in message and "flow-clash" in message
    assert "FLOW_DISABLE_PLUGINS" in message
    assert (
        flow_cli("list", env={"PYTHONPATH": path, "FLOW_DISABLE_PLUGINS": "clash"}).returncode == 0
    )
