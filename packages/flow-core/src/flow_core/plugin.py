"""The built-in plugin: flow-core's own components, registered through the ordinary hooks."""

from __future__ import annotations

from flow_core.components import Component
from flow_core.hookspecs import hookimpl

FLOW_PLUGIN_API = 1


@hookimpl
def flow_register_flows() -> list[Component]:
    return [
        Component(
            "mlp",
            "flow_core.models.mlp:MLPVelocity",
            "MLP velocity field v(x, t, cond) for low-dimensional data",
        ),
        Component(
            "mlp-average",
            "flow_core.models.mlp:MLPAverageVelocity",
            "MLP average-velocity field u(x, r, t, cond) for MeanFlow and SplitMeanFlow",
        ),
        Component(
            "coupling-flow",
            "flow_core.models.coupling:AffineCouplingFlow",
            "RealNVP-style affine-coupling normalizing flow (Dinh et al. 2017)",
        ),
    ]


@hookimpl
def flow_register_objectives() -> list[Component]:
    return [
        Component(
            "cfm",
            "flow_core.objectives.cfm:ConditionalFlowMatching",
            "conditional flow matching, independent coupling (Lipman 2023; rectified flow 1-RF)",
        ),
        Component(
            "ot-cfm",
            "flow_core.objectives.cfm:OTConditionalFlowMatching",
            "minibatch OT-CFM with the exact optimal permutation (Tong et al. 2023)",
        ),
        Component(
            "ot-cfm-sinkhorn",
            "flow_core.objectives.cfm:SinkhornConditionalFlowMatching",
            "minibatch OT-CFM with pairs drawn from an entropic Sinkhorn plan (POT)",
        ),
        Component(
            "w-cfm",
            "flow_core.objectives.wcfm:WeightedConditionalFlowMatching",
            "weighted CFM, Gibbs-kernel weights exp(-|x1-x0|^2/lambda) (Calvo-Ordonez 2025)",
        ),
        Component(
            "rf-pp",
            "flow_core.objectives.reflow:RectifiedFlowPlusPlus",
            "2-RF++ reflow loss: U-shaped times, time-weighted pseudo-Huber (Lee et al. 2024)",
        ),
        Component(
            "meanflow",
            "flow_core.objectives.meanflow:MeanFlow",
            "MeanFlow average-velocity identity with a JVP target (Geng et al. 2025)",
        ),
        Component(
            "split-meanflow",
            "flow_core.objectives.splitmeanflow:SplitMeanFlow",
            "SplitMeanFlow interval-splitting consistency, no JVP (Guo et al. 2025)",
        ),
        Component(
            "boss",
            "flow_core.objectives.boss:BossStraightening",
            "BOSS straightening: fine-tune a teacher onto its chords on a step grid (2023)",
        ),
        Component(
            "nll",
            "flow_core.objectives.likelihood:MaximumLikelihood",
            "maximum likelihood of an invertible flow under a N(0, I) base",
        ),
    ]


@hookimpl
def flow_register_samplers() -> list[Component]:
    return [
        Component(
            "euler",
            "flow_core.samplers.fixed_step:Euler",
            "explicit Euler on a uniform, shifted or Bellman (BOSS) time grid",
        ),
        Component("heun", "flow_core.samplers.fixed_step:Heun", "Heun's second-order method"),
        Component(
            "midpoint", "flow_core.samplers.fixed_step:Midpoint", "explicit midpoint (order 2)"
        ),
        Component("rk4", "flow_core.samplers.fixed_step:RK4", "classic Runge-Kutta (order 4)"),
        Component(
            "dopri5",
            "flow_core.samplers.adaptive:Dopri5",
            "adaptive Dormand-Prince 5(4) through torchdiffeq (rtol, atol)",
        ),
        Component(
            "adaptive",
            "flow_core.samplers.adaptive:AdaptiveODE",
            "any adaptive torchdiffeq method (method, rtol, atol)",
        ),
        Component(
            "sde",
            "flow_core.samplers.sde:EulerMaruyama",
            "marginal-preserving SDE dx = [v + g^2 s / 2] dt + g dW, Euler-Maruyama",
        ),
        Component(
            "few-step",
            "flow_core.samplers.average:FewStepAverageVelocity",
            "1, 2 or k jumps of an average-velocity model (MeanFlow, SplitMeanFlow)",
        ),
        Component(
            "inverse",
            "flow_core.samplers.invertible:InverseSampler",
            "sample an invertible flow by inverting source noise",
        ),
    ]


@hookimpl
def flow_register_optimizers() -> list[Component]:
    return [
        Component("adam", "torch.optim:Adam", "torch's Adam (Kingma & Ba 2015)"),
        Component(
            "adamw", "torch.optim:AdamW", "torch's AdamW, decoupled weight decay (Loshchilov 2019)"
        ),
        Component("sgd", "torch.optim:SGD", "torch's SGD with momentum and Nesterov options"),
    ]


@hookimpl
def flow_register_tasks() -> list[Component]:
    return [
        Component(
            "core.toy2d",
            "flow_core.tasks.toy2d:Toy2D",
            "train a flow on a 2-D target with any registered objective and sampler",
        ),
    ]


@hookimpl
def flow_register_loggers() -> list[Component]:
    return [
        Component(
            "jsonl",
            "flow_core.loggers.jsonl:JsonlLogger",
            "one JSON line per logged step in <run>/metrics.jsonl (always on)",
        ),
        Component(
            "tensorboard",
            "flow_core.loggers.tensorboard:TensorBoardLogger",
            "TensorBoard event files in <run>/tensorboard/ (pip install 'flow-core[tensorboard]')",
        ),
        Component(
            "mlflow",
            "flow_core.loggers.mlflow:MlflowLogger",
            "MLflow local file store in <run>/mlruns/ (pip install 'flow-core[mlflow]')",
        ),
    ]
