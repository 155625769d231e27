"""Option routing: explicit settings are used or refused, before any work starts."""

import pytest

from flow_core.config import resolve_settings
from flow_core.errors import ConfigError, UnknownComponentError
from flow_core.registry import using_registry
from flow_core.routing import plan_run
from flow_core.tasks.toy2d import Toy2D
from flow_core.testing import isolated_registry


def plan(*overrides, file_values=None):
    registry = isolated_registry()
    with using_registry(registry):
        resolution = resolve_settings(
            Toy2D.Config, file_values=file_values, overrides=list(overrides)
        )
        return resolution, plan_run(Toy2D(), resolution, registry)


def test_defaults_choose_components_by_model_kind():
    _, chosen = plan()
    assert chosen.components == {
        "objective": ("objective", "cfm"),
        "flow": ("flow", "mlp"),
        "sampler": ("sampler", "euler"),
        "train.optimizer": ("optimizer", "adam"),
    }
    assert chosen.options == {} and chosen.explicit == frozenset()
    _, average = plan(("objective", "meanflow"))
    assert average.components["flow"] == ("flow", "mlp-average")
    assert average.components["sampler"] == ("sampler", "few-step")
    assert average.model_kind == "average-velocity"


def test_training_section_by_short_and_dotted_name():
    resolution, _ = plan(("lr", "0.01"), ("train.optimizer", "adamw"), ("lr_schedule", "cosine"))
    assert resolution.config.train.lr == 0.01
    assert resolution.config.train.optimizer == "adamw"
    assert resolution.explicit == {"train.lr", "train.optimizer", "train.lr_schedule"}


def test_a_plain_option_goes_to_every_component_that_takes_it():
    _, chosen = plan(("sampler", "dopri5"), ("rtol", "1e-3"))
    assert chosen.options == {"sampler": {"rtol": 1e-3}}
    _, both = plan(("sampler", "dopri5"), ("reflow_rounds", "1"), ("rtol", "1e-3"))
    assert both.options == {"sampler": {"rtol": 1e-3}, "reflow_sampler": {"rtol": 1e-3}}
    _, one = plan(("sampler", "dopri5"), ("reflow_rounds", "1"), ("reflow_sampler.rtol", "0.1"))
    assert one.options == {"reflow_sampler": {"rtol": 0.1}}


def test_role_dot_param_names_a_declared_option_field():
    resolution, _ = plan(("sampler.steps", "8"))
    assert resolution.config.sample_steps == 8
    assert resolution.explicit == {"sample_steps"}


def test_options_of_components_and_the_optimizer_are_typed():
    _, chosen = plan(("optimizer.eps", "1e-6"), ("coupling", "ot"))
    assert chosen.options == {"train.optimizer": {"eps": 1e-6}, "objective": {"coupling": "ot"}}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ([("rtol", "1e-3")], r"no component of this run takes 'rtol'.*sampler 'dopri5'"),
        ([("sampler.rtol", "1e-3")], r"sampler 'euler' takes no 'rtol'"),
        ([("grid", "bellman"), ("sampler", "dopri5")], r"sampler 'dopri5' takes no 'grid'"),
        ([("reflow_pairs", "10")], r"applies only when reflow_rounds > 0"),
        ([("reflow_objective", "rf-pp")], r"applies only when reflow_rounds > 0"),
        ([("finetune_steps", "10")], r"applies only when a stage starts from a trained model"),
        ([("momentum", "0.5")], r"optimizer 'adam' takes no 'momentum'.*'sgd'"),
        ([("flow", "mlp-average")], r"do not fit together"),
        ([("depth", "2"), ("objective", "nll")], r"flow 'coupling-flow' takes no 'depth'"),
        ([("objective", "meanflow"), ("reflow_rounds", "1")], r"reflow needs a velocity"),
        ([("sampler.nope", "1")], r"sampler 'euler' takes no 'nope'"),
        ([("teacher.steps", "1")], r"'teacher' is no component of this task"),
        ([("rtol", "fast"), ("sampler", "dopri5")], r"rtol='fast': expected float"),
    ],
)
def test_unused_or_wrong_settings_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=message):
        plan(*overrides)


def test_component_names_in_options_are_checked():
    with pytest.raises(UnknownComponentError, match="norm 'powr'"):
        plan(("norm", "powr"))
    with pytest.raises(UnknownComponentError, match="optimizer 'adamz'"):
        plan(("optimizer", "adamz"))


def test_toml_tables_address_sections_and_roles():
    resolution, chosen = plan(
        file_values={"train": {"lr": 0.02}, "sampler": "dopri5", "rtol": 1e-3}
    )
    assert resolution.config.train.lr == 0.02
    assert chosen.options == {"sampler": {"rtol": 1e-3}}


def test_any_field_name_is_safe_unless_declared_a_component():
    """A plain field may be called ``flow`` or ``optimizer``: only component() fields name
    components, so its value is not looked up in the registry."""
    from dataclasses import dataclass

    from flow_core.options import component
    from flow_core.training import TrainSettings, training

    @dataclass(frozen=True)
    class Config:
        flow: str = "ground-truth.npz"  # a file, not a network
        optimizer: str = "whatever"
        sampler: str = component("sampler", "euler")
        train: TrainSettings = training()

    class Task:
        pass

    registry = isolated_registry()
    with using_registry(registry):
        resolution = resolve_settings(Config, overrides=[("flow", "other.npz")])
        chosen = plan_run(Task(), resolution, registry)
    assert resolution.config.flow == "other.npz"
    assert chosen.components == {
        "sampler": ("sampler", "euler"),
        "train.optimizer": ("optimizer", "adam"),
    }
