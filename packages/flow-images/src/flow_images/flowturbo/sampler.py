"""The FlowTurbo sampler: Heun, then pseudo-corrector, then refiner steps; compilable as one.

Zhao, Shi, Yu, Zhou & Lu 2024, "FlowTurbo: Towards Real-time Flow-Based Image Generation with
Velocity Refiner" (arXiv 2409.18128, §3.3–3.4; project convention, t = 0 noise, t = 1 data). The
flow ODE dx/dt = v_θ(x, t, c) is solved on the uniform grid t_k = k/K, K = N_H + N_P + N_R, h = 1/K,
in three phases that run in order. A velocity v is carried from step to step: the velocity at the
end of the last step.

1. **Heun**, N_H steps, 2 NFE each (as :func:`flow_core.samplers.fixed_step.heun_step`):
   v_k = v_θ(x_k, t_k), x̃ = x_k + h·v_k, v′ = v_θ(x̃, t_{k+1}),
   x_{k+1} = x_k + (h/2)·(v_k + v′); v′ is carried forward.
2. **Pseudo-corrector**, N_P steps, 1 NFE each: Heun whose first velocity is the carried one,
   v_k = v (the predictor's velocity at the previous step's predicted point x̃, not at x_k),
   so only v′ = v_θ(x_k + h·v_k, t_{k+1}) is evaluated; x_{k+1} = x_k + (h/2)·(v_k + v′), and
   v′ is carried forward. The paper shows it keeps Heun's second order.
3. **Refiner**, N_R steps, no predictor call: v̂_k = v + r_φ(x_k, t_k, v, c),
   x_{k+1} = x_k + h·v̂_k, and v̂_k is carried forward (one refiner call per step).

When a phase needs a carried velocity and none exists yet (the first step has no Heun phase
before it), the predictor is evaluated once at (x_0, t_0). Hence

    nfe = 2·N_H + N_P + [N_H = 0],        refiner calls = N_R,

and with N_H = N_R = 0 the sampler is the plain pseudo-corrector, nfe = steps + 1. The paper's
default is (N_H, N_P, N_R) = (1, 5, 3): 7 NFE and 3 refiner calls on 9 steps.

Differences from the paper's code, both deliberate: the reference code evaluates the first
pseudo-corrector step afresh after a Heun phase (one NFE more), where we reuse the Heun step's
end velocity v′ — the same quantity the pseudo-corrector carries between its own steps; and its
refiner step is a Heun-like step with two refiner calls, where we take a single Euler step with
the refined velocity, which is exactly the step the refiner is trained on (x′ = x + Δ·v).

**Sample-aware compilation** (``compile=True``): the whole fixed-step loop — every predictor
and refiner call of the schedule — is traced by ``torch.compile`` into one program for the
fixed schedule (its times are constants), with static shapes; the compiled function is cached
per schedule, and torch recompiles it for each new input shape, dtype, device, model type or
``cond=None`` versus a tensor. Graph breaks in a model (data-dependent checks) split the
program but do not change the result. ``compile_mode="reduce-overhead"`` also records the
program as CUDA graphs on a GPU, which removes the per-kernel launch cost that dominates small
models (on the CPU it is the default mode). Compilation needs a working backend (on the CPU,
inductor needs a C++ compiler); when it fails the sampler raises :class:`FlowError` rather than
running eagerly.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import ClassVar

import torch
from torch import Tensor, nn

from flow_core.errors import ConfigError, FlowError
from flow_core.gpu import unwrap
from flow_core.paths import expand_time
from flow_core.samplers import uniform_grid
from flow_images.flowturbo.model import FlowTurboModel

__all__ = ["COMPILE_MODES", "PHASES", "FlowTurboSampler"]

PHASES: tuple[str, ...] = ("heun", "pseudo", "refine")
"""The phase names of a schedule, in the order they run."""

COMPILE_MODES: tuple[str, ...] = (
    "default",
    "reduce-overhead",
    "max-autotune",
    "max-autotune-no-cudagraphs",
)
"""The ``torch.compile`` modes the sampler accepts."""

_RECOMPILE_LIMIT = 64

Schedule = tuple[tuple[str, float, float], ...]
"""``(phase, t_k, t_{k+1})`` for every step."""

SampleFn = Callable[[nn.Module, "FlowTurboModel | None", Tensor, "Tensor | None"], Tensor]


def _count(value: object, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"flowturbo: {key} must be an integer >= 0, got {value!r}")
    return value


def _integrate(
    schedule: Schedule,
    model: nn.Module,
    turbo: FlowTurboModel | None,
    x0: Tensor,
    cond: Tensor | None,
) -> Tensor:
    """Run ``schedule`` from ``x0``: ``model`` predicts, ``turbo.refine`` serves refiner steps.

    ``model`` is the caller's model as given (it may be wrapped by DDP or ``torch.compile``);
    ``turbo`` is the FlowTurboModel inside it, needed only when the schedule has refiner steps.
    """
    x = x0
    velocity: Tensor | None = None
    for phase, t, t_next in schedule:
        now = torch.full((x.shape[0],), t, dtype=x.dtype, device=x.device)
        later = torch.full((x.shape[0],), t_next, dtype=x.dtype, device=x.device)
        h = expand_time(later - now, x)
        if phase == "heun" or velocity is None:
            velocity = model(x, now, cond)
        if phase == "refine":
            assert turbo is not None  # FlowTurboSampler.sample checked it
            velocity = turbo.refine(x, now, velocity, cond)
            x = x + h * velocity
        else:
            end_velocity = model(x + h * velocity, later, cond)
            x = x + 0.5 * h * (velocity + end_velocity)
            velocity = end_velocity
    return x


class FlowTurboSampler:
    """FlowTurbo's three-phase sampler; see the module docstring for the steps and the NFE.

    The sampler runs in the caller's autograd mode (call it under ``torch.no_grad()`` to
    sample). Times are passed to the models as ``(B,)`` tensors in ``x0``'s dtype. After
    :meth:`sample`, ``nfe`` holds the number of predictor calls and ``refiner_calls`` the
    number of refiner calls.

    Args:
        heun_steps: N_H, Heun steps (2 NFE each).
        pseudo_steps: N_P, pseudo-corrector steps (1 NFE each).
        refiner_steps: N_R, refiner steps (no NFE); when positive, the model must be a
            :class:`~flow_images.flowturbo.model.FlowTurboModel`.
        compile: compile the whole sampling loop with ``torch.compile`` (see the module
            docstring).
        compile_mode: the ``torch.compile`` mode, one of :data:`COMPILE_MODES`;
            ``"reduce-overhead"`` replays CUDA graphs on a GPU (the returned tensor is then a
            copy of the graph's output buffer).

    Raises:
        ConfigError: a count is not an integer >= 0, the schedule has no step, ``steps``
            is smaller than N_H + N_R, or ``compile_mode`` is unknown.
    """

    name: ClassVar[str] = "flowturbo"
    model_kind: ClassVar[str] = "velocity"

    def __init__(
        self,
        heun_steps: int = 1,
        pseudo_steps: int = 5,
        refiner_steps: int = 3,
        compile: bool = False,
        compile_mode: str = "default",
    ) -> None:
        if compile_mode not in COMPILE_MODES:
            raise ConfigError(
                f"flowturbo: unknown compile_mode {compile_mode!r}; expected one of: "
                f"{', '.join(COMPILE_MODES)}"
            )
        self.compile_mode = compile_mode
        self.heun_steps = _count(heun_steps, "heun_steps")
        self.refiner_steps = _count(refiner_steps, "refiner_steps")
        self.pseudo_steps = _count(pseudo_steps, "pseudo_steps")
        self.steps = self.heun_steps + self.pseudo_steps + self.refiner_steps
        if self.steps == 0:
            raise ConfigError("flowturbo: the schedule needs at least one step; all counts are 0")
        self.compile = bool(compile)
        self.time_grid: Tensor = uniform_grid(self.steps)
        counts = (self.heun_steps, self.pseudo_steps, self.refiner_steps)
        phases = [name for name, count in zip(PHASES, counts, strict=True) for _ in range(count)]
        times = self.time_grid.tolist()
        self.schedule: Schedule = tuple(
            (phase, t, t_next)
            for phase, (t, t_next) in zip(phases, itertools.pairwise(times), strict=True)
        )
        self._compiled: dict[Schedule, SampleFn] = {}
        self.nfe = 0
        self.refiner_calls = 0

    @property
    def refiner_grid(self) -> Tensor:
        """The times of the refiner phase, t_{N_H+N_P} … t_K = 1 (for the refiner objective)."""
        return self.time_grid[self.heun_steps + self.pseudo_steps :]

    @property
    def expected_nfe(self) -> int:
        """Predictor calls per :meth:`sample`: 2·N_H + N_P + [N_H = 0]."""
        return 2 * self.heun_steps + self.pseudo_steps + (1 if self.heun_steps == 0 else 0)

    def sample(self, model: nn.Module, x0: Tensor, cond: Tensor | None = None) -> Tensor:
        """Integrate from ``x0`` at t = 0 to t = 1 with the schedule; returns x1.

        Raises:
            FlowError: refiner steps are asked for but ``model`` is no ``FlowTurboModel``;
                ``cond`` is invalid for the refiner; or compilation fails.
        """
        turbo: FlowTurboModel | None = None
        if self.refiner_steps > 0:
            inner = unwrap(model)
            if not isinstance(inner, FlowTurboModel):
                raise FlowError(
                    f"flowturbo: refiner_steps={self.refiner_steps} needs a FlowTurboModel"
                    f"(predictor, refiner), got {type(inner).__name__}; wrap the velocity field "
                    "with a trained VelocityRefiner, or pass refiner_steps=0 to use the "
                    "predictor alone"
                )
            inner.refiner.check_labels(cond, x0.shape[0])
            turbo = inner
        if self.compile:
            x1 = self._sample_compiled(model, turbo, x0, cond)
        else:
            x1 = _integrate(self.schedule, model, turbo, x0, cond)
        self.nfe = self.expected_nfe
        self.refiner_calls = self.refiner_steps
        return x1

    def _sample_compiled(
        self, model: nn.Module, turbo: FlowTurboModel | None, x0: Tensor, cond: Tensor | None
    ) -> Tensor:
        compiled = self._compiled.get(self.schedule)
        if compiled is None:
            schedule = self.schedule

            def run(
                model: nn.Module, turbo: FlowTurboModel | None, x0: Tensor, cond: Tensor | None
            ) -> Tensor:
                return _integrate(schedule, model, turbo, x0, cond)

            compiled = torch.compile(run, dynamic=False, mode=self.compile_mode)
            self._compiled[self.schedule] = compiled
        try:
            with torch._dynamo.config.patch(
                recompile_limit=_RECOMPILE_LIMIT, fail_on_recompile_limit_hit=True
            ):
                if self.compile_mode not in ("reduce-overhead", "max-autotune"):
                    return compiled(model, turbo, x0, cond)
                # CUDA-graph modes: start a new graph step, and copy the reused output buffer.
                torch.compiler.cudagraph_mark_step_begin()  # type: ignore[no-untyped-call]
                return compiled(model, turbo, x0, cond).clone()
        except (
            torch._dynamo.exc.TorchDynamoException,
            torch._dynamo.exc.FailOnRecompileLimitHit,
        ) as error:
            raise FlowError(
                f"flowturbo: torch.compile of the sampling loop failed on this machine "
                f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}); "
                "on the CPU, inductor needs a working C++ compiler. Pass compile=False to "
                "sample eagerly"
            ) from error
