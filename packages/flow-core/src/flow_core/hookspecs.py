"""Hook specifications of the ``flow`` plugin system.

A plugin is a module (named by an entry point in the group ``flow.plugins``) that defines some of
these functions, decorated with :data:`flow_core.hookimpl`, and the module constant
``FLOW_PLUGIN_API`` equal to :data:`flow_core.plugins.FLOW_PLUGIN_API`. Each hook takes no
arguments and returns a list of :class:`flow_core.components.Component` records of one kind.
Every hook is documented in ``docs/plugins/hook-reference.md`` (a test checks this).
"""

from __future__ import annotations

import pluggy

from flow_core.components import Component

__all__ = [
    "flow_register_flows",
    "flow_register_loggers",
    "flow_register_norms",
    "flow_register_objectives",
    "flow_register_optimizers",
    "flow_register_samplers",
    "flow_register_tasks",
    "hookimpl",
    "hookspec",
]

PROJECT_NAME = "flow"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def flow_register_flows() -> list[Component]:  # type: ignore[empty-body]
    """Return the plugin's flows: networks in velocity, average-velocity or invertible form.

    Example (from flow-core)::

        @hookimpl
        def flow_register_flows():
            return [
                Component(
                    "mlp",
                    "flow_core.models.mlp:MLPVelocity",
                    "MLP velocity field v(x, t, cond)",
                ),
            ]
    """


@hookspec
def flow_register_objectives() -> list[Component]:  # type: ignore[empty-body]
    """Return the plugin's training objectives (``loss, metrics = objective(model, batch)``).

    Example (from flow-images)::

        @hookimpl
        def flow_register_objectives():
            return [
                Component(
                    "flowturbo-refiner",
                    "flow_images.flowturbo.objective:RefinerObjective",
                    "FlowTurbo: train a velocity refiner",
                ),
            ]
    """


@hookspec
def flow_register_samplers() -> list[Component]:  # type: ignore[empty-body]
    """Return the plugin's samplers (``x1 = sampler.sample(model, x0, cond)``, NFE reported).

    Example (from flow-images)::

        @hookimpl
        def flow_register_samplers():
            return [
                Component(
                    "flowturbo",
                    "flow_images.flowturbo.sampler:FlowTurboSampler",
                    "FlowTurbo: Heun, pseudo-corrector, refiner",
                ),
            ]
    """


@hookspec
def flow_register_tasks() -> list[Component]:  # type: ignore[empty-body]
    """Return the plugin's tasks; names carry the plugin's prefix (``images.digits``).

    Example (from flow-images)::

        @hookimpl
        def flow_register_tasks():
            return [
                Component(
                    "images.digits",
                    "flow_images.tasks.digits:Digits",
                    "class-conditional 8x8 digits",
                ),
            ]
    """


@hookspec
def flow_register_norms() -> list[Component]:  # type: ignore[empty-body]
    """Return normalization layers that any plugin's model can select (``norm=power``).

    Example (from flow-norms)::

        @hookimpl
        def flow_register_norms():
            return [
                Component(
                    "power",
                    "flow_norms.norms.power:PowerNorm",
                    "PowerNorm: running quadratic mean",
                ),
            ]
    """


@hookspec
def flow_register_optimizers() -> list[Component]:  # type: ignore[empty-body]
    """Return optimizers that any task can select (``optimizer=adamp``).

    Example (from flow-norms)::

        @hookimpl
        def flow_register_optimizers():
            return [
                Component(
                    "adamp",
                    "flow_norms.optim.adamp:AdamP",
                    "AdamP: Adam without radial updates",
                ),
            ]
    """


@hookspec
def flow_register_loggers() -> list[Component]:  # type: ignore[empty-body]
    """Return experiment loggers that any run can select (``--set loggers=tensorboard``).

    A logger class is constructed as ``cls(run_dir)`` and satisfies
    :class:`flow_core.loggers.Logger`; it may define a static ``check_available()`` that raises
    :class:`flow_core.errors.UsageError` when its library is missing. Example::

        @hookimpl
        def flow_register_loggers():
            return [
                Component(
                    "tensorboard",
                    "flow_core.loggers.tensorboard:TensorBoardLogger",
                    "TensorBoard event files",
                ),
            ]
    """
