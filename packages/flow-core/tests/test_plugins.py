"""The plugin manager: isolation of failures, switches, API version, names and clashes."""

import sys
import types
from importlib.metadata import EntryPoint

import pytest

from flow_core import FLOW_PLUGIN_API, Component, hookimpl
from flow_core.errors import PluginConflictError, PluginError, UnknownComponentError
from flow_core.plugins import PluginWarning, load_plugins
from flow_core.registry import Registry


def make_module(name, *, api=FLOW_PLUGIN_API, tasks=None, objectives=None, fail=None):
    module = types.ModuleType(name)
    if api is not None:
        module.FLOW_PLUGIN_API = api
    if tasks is not None:
        module.flow_register_tasks = hookimpl(lambda: tasks)
    if objectives is not None:
        module.flow_register_objectives = hookimpl(lambda: objectives)
    if fail is not None:

        def boom():
            raise fail

        module.flow_register_samplers = hookimpl(boom)
    return module


@pytest.fixture
def modules(monkeypatch):
    """Register fake modules in sys.modules and return entry points to them."""

    def add(name, module=None):
        if module is not None:
            monkeypatch.setitem(sys.modules, f"fake_{name}", module)
        return EntryPoint(name=name, value=f"fake_{name}", group="flow.plugins")

    for var in ("FLOW_STRICT_PLUGINS", "FLOW_DISABLE_PLUGINS", "FLOW_LOAD_PLUGINS"):
        monkeypatch.delenv(var, raising=False)
    return add


TASK = Component("alpha.job", "flow_core.tasks.toy2d:Toy2D", "a task")


def test_core_is_always_loaded_through_the_same_hooks():
    registry = Registry(load_plugins(entry_points_=[]))
    names = {(e.kind, e.name) for e in registry.entries()}
    assert {
        ("objective", "cfm"),
        ("sampler", "euler"),
        ("sampler", "dopri5"),
        ("task", "core.toy2d"),
        ("flow", "mlp"),
    } <= names
    assert {e.plugin.name for e in registry.entries()} == {"core"}


def test_good_plugin_registers(modules):
    ep = modules("alpha", make_module("alpha", tasks=[TASK]))
    registry = Registry(load_plugins(entry_points_=[ep]))
    assert registry.get("task", "alpha.job").plugin.name == "alpha"


def test_import_failure_is_one_warning_and_everything_else_works(modules):
    broken = modules("broken")  # no module of that name exists
    good = modules("alpha", make_module("alpha", tasks=[TASK]))
    with pytest.warns(PluginWarning, match=r"skipping plugin 'broken' \(unknown \?\): Module"):
        plugin_set = load_plugins(entry_points_=[broken, good])
    status = {p.name: p.status for p in plugin_set.plugins}
    assert status == {"core": "loaded", "broken": "failed", "alpha": "loaded"}
    assert Registry(plugin_set).get("task", "alpha.job")


def test_strict_mode_raises(modules, monkeypatch):
    monkeypatch.setenv("FLOW_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="skipping plugin 'broken'.*FLOW_STRICT_PLUGINS"):
        load_plugins(entry_points_=[modules("broken")])


def test_strict_mode_names_every_broken_plugin(modules, monkeypatch):
    monkeypatch.setenv("FLOW_STRICT_PLUGINS", "1")
    broken = [modules("broken"), modules("gamma", make_module("gamma", fail=RuntimeError("x")))]
    with pytest.raises(PluginError, match=r"^2 plugin\(s\) failed.*'broken'.*'gamma'"):
        load_plugins(entry_points_=[*broken, modules("alpha", make_module("alpha", tasks=[TASK]))])


def test_task_outside_the_plugin_prefix_is_refused(modules):
    ep = modules("foo", make_module("foo", tasks=[Component("images.fake", "a.b:C", "x")]))
    with pytest.warns(PluginWarning, match="plugin 'foo' registers task 'images.fake'.*'foo.'"):
        plugin_set = load_plugins(entry_points_=[ep])
    assert [p.status for p in plugin_set.plugins if p.name == "foo"] == ["failed"]


def test_clash_can_be_reported_instead_of_raised(modules):
    ep = modules("zeta", make_module("zeta", objectives=[Component("cfm", "a.b:C", "mine")]))
    plugin_set = load_plugins(entry_points_=[ep], report_conflicts=True)
    status = {p.name: (p.status, p.error) for p in plugin_set.plugins}
    assert status["zeta"][0] == status["core"][0] == "conflict"
    assert "objective 'cfm' also registered by flow-core" in status["zeta"][1]


def test_hook_that_raises_is_isolated(modules):
    ep = modules("gamma", make_module("gamma", fail=RuntimeError("kaput")))
    with pytest.warns(PluginWarning, match="gamma.*RuntimeError: kaput"):
        plugin_set = load_plugins(entry_points_=[ep])
    assert not plugin_set.manager.has_plugin("gamma")


@pytest.mark.parametrize(
    ("api", "message"),
    [(None, "does not declare FLOW_PLUGIN_API"), (99, "written for plugin API 99")],
)
def test_api_version_is_checked(modules, api, message):
    ep = modules("old", make_module("old", api=api, tasks=[TASK]))
    with pytest.warns(PluginWarning, match=message):
        plugin_set = load_plugins(entry_points_=[ep])
    assert [p.status for p in plugin_set.plugins if p.name == "old"] == ["failed"]


def test_bad_names_are_refused(modules):
    bad = [Component("Bad_Name", "flow_core.tasks.toy2d:Toy2D", "x")]
    ep = modules("delta", make_module("delta", objectives=bad))
    with pytest.warns(PluginWarning, match="kebab-case"):
        load_plugins(entry_points_=[ep])
    ep = modules("eps", make_module("eps", tasks=[Component("noprefix", "a.b:C", "x")]))
    with pytest.warns(PluginWarning, match="'<plugin>.<task>'"):
        load_plugins(entry_points_=[ep])
    with pytest.raises(PluginError, match="module:attribute"):
        Component("x", "not a target", "s")


def test_clash_names_both_distributions(modules):
    ep = modules("zeta", make_module("zeta", objectives=[Component("cfm", "a.b:C", "mine")]))
    with pytest.raises(
        PluginConflictError, match=r"objective 'cfm' .*'core' \(flow-core\).*'zeta'"
    ):
        load_plugins(entry_points_=[ep])


def test_disable_and_load_switches(modules, monkeypatch):
    a = modules("alpha", make_module("alpha", tasks=[TASK]))
    b = modules("beta", make_module("beta", tasks=[Component("beta.job", "a.b:C", "b")]))
    monkeypatch.setenv("FLOW_DISABLE_PLUGINS", "alpha")
    status = {p.name: p.status for p in load_plugins(entry_points_=[a, b]).plugins}
    assert status == {"core": "loaded", "alpha": "disabled", "beta": "loaded"}
    monkeypatch.delenv("FLOW_DISABLE_PLUGINS")
    monkeypatch.setenv("FLOW_LOAD_PLUGINS", "beta")
    status = {p.name: p.status for p in load_plugins(entry_points_=[a, b]).plugins}
    assert status == {"core": "loaded", "alpha": "disabled", "beta": "loaded"}


def test_unknown_names_suggest_and_name_providers():
    registry = Registry(load_plugins(entry_points_=[]))
    with pytest.raises(UnknownComponentError, match="did you mean 'core.toy2d'"):
        registry.get("task", "core.toy2")
    with pytest.raises(UnknownComponentError, match="provided by flow-norms"):
        registry.get("norm", "power")
    with pytest.raises(UnknownComponentError, match="pip install flow-images"):
        registry.get("task", "images.digits")
    with pytest.raises(Exception, match="unknown kind 'widget'"):
        registry.entries("widget")
