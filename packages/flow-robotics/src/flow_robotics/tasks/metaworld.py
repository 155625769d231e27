"""``robotics.metaworld``: one-step MeanFlow policies with dispersive regularisation (DM1).

DM1 (Zou et al. 2025, "DM1: MeanFlow with Dispersive Regularization for 1-Step Robotic
Manipulation") generates an action chunk in one network call with a MeanFlow head (Geng et
al. 2025, arXiv 2505.13447) and adds a dispersive loss on the policy's embeddings (Wang & He
2025, arXiv 2506.09027) so that one-step generation does not collapse.

The run:

1. **Demonstrations.** Meta-World's scripted expert for ``env``, made bimodal (a detour to a
   random side per episode, ``multimodal``) and noisy (``noise``), on the task's train
   placements; the successful episodes are written to ``demos.hdf5`` in robomimic's layout and
   read back through the same loader that reads a user's file (``data=demo.hdf5``).
2. **Training.** A chunk policy (:mod:`flow_robotics.networks.policy`) whose head is trained by
   the registered ``objective`` — ``meanflow`` (default), ``split-meanflow``, ``cfm``, ``bc-mse``
   or any other of a fitting model kind — plus, unless ``dispersive=none``, the dispersive term
   (:class:`~flow_robotics.dispersive.objective.Dispersive`), through flow-core's training loop.
3. **Evaluation.** For each NFE in ``eval_nfe`` the ``sampler`` (``few-step`` for MeanFlow,
   ``euler`` for flow matching, ``sde`` for a diffusion-style head) drives ``episodes`` seeded
   episodes on the task's *test* placements: success rate with a 95 % Wilson interval, return,
   latency per chunk at batch 1 (median, p95), and the side each episode went round on (mode
   coverage); the effective rank of the encoder's embeddings of the demonstrations measures
   collapse. Figures: success against NFE and latency, the hand paths, and a rendered strip of
   a rollout where MuJoCo renders off-screen (else only the paths, said so in the report).

A user's robomimic file whose ``env_args`` name no Meta-World task is trained on and scored
offline: the chunk error of one-NFE actions on the file's ``mask/valid`` demos.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor

from flow_core.errors import ConfigError
from flow_core.options import component, option, setting, used_if
from flow_core.training import TrainSettings, train, training
from flow_robotics.data.demos import DemoStats, chunk_pairs, collect_demos
from flow_robotics.data.robomimic import Demos, read_demos, write_demos
from flow_robotics.dispersive.objective import CHOICES, LAYER_CHOICES, Dispersive, chosen_layers
from flow_robotics.envs.metaworld import TASKS, episode_mode
from flow_robotics.figures import rollout_strip, success_vs_nfe, trajectory_plot
from flow_robotics.metrics import effective_rank, mode_shares
from flow_robotics.networks.policy import ObservationEncoder
from flow_robotics.rollout import ChunkedPolicy, PolicyResult, evaluate_policy

if TYPE_CHECKING:
    from torch import nn

    from flow_core.protocols import Batch
    from flow_core.registry import Registry
    from flow_core.runner import RunContext

__all__ = ["DEFAULT_FLOWS", "DEFAULT_SAMPLERS", "MetaWorldConfig", "MetaWorldTask"]

DEFAULT_FLOWS = {"velocity": "policy-velocity", "average-velocity": "policy-average"}
DEFAULT_SAMPLERS = {"velocity": "euler", "average-velocity": "few-step"}
DISPERSIVE = used_if("dispersive != 'none'", lambda c: c.dispersive != "none")
GENERATED = used_if("data is empty (demonstrations are generated)", lambda c: not c.data)
USER_DATA = used_if("data names a robomimic file", lambda c: bool(c.data))
DEMO_FILE = "demos.hdf5"


@dataclass(frozen=True)
class MetaWorldConfig:
    """Settings of ``robotics.metaworld``; the defaults train and evaluate in minutes on a CPU."""

    env: str = "reach-v3"
    data: str = ""
    obs_keys: str = setting("", when=USER_DATA)
    multimodal: bool = setting(True, when=GENERATED)
    demos: int = setting(40, when=GENERATED)
    noise: float = setting(0.1, when=GENERATED)
    horizon: int = 150
    objective: str = component("objective", "meanflow")
    flow: str | None = component("flow", None)
    sampler: str | None = component("sampler", None)
    history: int = option("flow", "history", 2)
    chunk: int = option("flow", "chunk", 4)
    hidden: int = option("flow", "hidden", 256)
    dispersive: str = "infonce-l2"
    dispersive_weight: float = setting(0.5, when=DISPERSIVE)
    dispersive_tau: float = setting(0.5, when=DISPERSIVE)
    dispersive_layer: str = setting("mid", when=DISPERSIVE)
    eval_nfe: str = "1,2,5,10"
    episodes: int = 20
    render: bool = True
    train: TrainSettings = training(
        steps=3000,
        batch_size=256,
        lr=1e-3,
        lr_schedule="cosine",
        ema_decay=0.995,
        log_every=100,
        checkpoint_every=1000,
    )

    def __post_init__(self) -> None:
        if not self.data and self.env not in TASKS:
            raise ConfigError(f"env must be one of {', '.join(TASKS)}, got {self.env!r}")
        if self.dispersive not in CHOICES:
            raise ConfigError(
                f"dispersive must be one of {', '.join(CHOICES)}, got {self.dispersive!r}"
            )
        if self.dispersive_layer not in LAYER_CHOICES:
            chosen_layers(self.dispersive_layer)
        for name in ("demos", "horizon", "history", "chunk", "episodes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.noise < 0:
            raise ConfigError(f"noise must be >= 0, got {self.noise}")
        self.nfe_list()

    def nfe_list(self) -> list[int]:
        """The NFEs of ``eval_nfe`` (comma-separated positive integers)."""
        try:
            values = [int(v) for v in self.eval_nfe.split(",") if v.strip()]
        except ValueError:
            values = []
        if not values or min(values) < 1:
            raise ConfigError(
                f"eval_nfe must be comma-separated integers >= 1 (e.g. 1,2,5,10), got"
                f" {self.eval_nfe!r}"
            )
        return values


class MetaWorldTask:
    """Train a chunk policy on expert demonstrations and roll it out; see the module docstring."""

    Config: ClassVar[type[MetaWorldConfig]] = MetaWorldConfig

    def components(self, config: MetaWorldConfig, registry: Registry) -> dict[str, str | None]:
        """The policy network and sampler follow the objective's model kind unless named."""
        kind = registry.load("objective", config.objective).model_kind
        if kind not in DEFAULT_FLOWS:
            raise ConfigError(
                f"objective {config.objective!r} trains a {kind} model; robotics.metaworld"
                " takes velocity or average-velocity objectives (e.g. meanflow, cfm, bc-mse)"
            )
        return {
            "objective": config.objective,
            "flow": config.flow or DEFAULT_FLOWS[kind],
            "sampler": config.sampler or DEFAULT_SAMPLERS[kind],
            "train.optimizer": config.train.optimizer,
        }

    def run(self, config: MetaWorldConfig, ctx: RunContext) -> dict[str, float]:
        demos, stats = self._demos(config, ctx)
        model, objective, cond = self._train(config, ctx, demos)
        metrics = self._embedding_metrics(config, model, cond)
        metrics["demos"] = float(len(demos.demos))
        if stats is not None:
            metrics["expert_success"] = stats.success_rate
        if demos.env_name not in TASKS:
            metrics.update(self._offline(config, ctx, model, objective))
            if ctx.is_main:
                self._report_offline(ctx, config, demos, metrics)
            return metrics
        rows, results = self._sweep(config, ctx, model, objective, demos.env_name)
        first = rows[0]
        for key in ("success", "success_low", "success_high", "return", "latency_ms"):
            metrics[key] = float(first[key])
        metrics["latency_p95_ms"] = float(first["latency_p95_ms"])
        metrics["modes_covered"] = float(first["modes_covered"])
        for row in rows:
            metrics[f"success_nfe{row['nfe']}"] = float(row["success"])
            metrics[f"latency_ms_nfe{row['nfe']}"] = float(row["latency_ms"])
            metrics[f"return_nfe{row['nfe']}"] = float(row["return"])
            metrics[f"modes_covered_nfe{row['nfe']}"] = float(row["modes_covered"])
        if ctx.is_main:
            self._report(config, ctx, demos, stats, rows, results, metrics, model, objective)
        return metrics

    def evaluate(self, config: MetaWorldConfig, ctx: RunContext) -> dict[str, float]:
        """``flow eval``: the weights are loaded and the policy is rolled out again (e.g.
        with another sampler or NFE: ``--set eval_nfe=1,20``)."""
        return self.run(config, ctx)

    def sample(self, config: MetaWorldConfig, ctx: RunContext, count: int) -> dict[str, Tensor]:
        """``flow sample``: action chunks for the first ``count`` observation histories."""
        demos, _ = self._demos(config, ctx)
        model, objective, cond = self._train(config, ctx, demos)
        policy = self._policy(config, ctx, model, objective, self.nfes(config, objective)[0])
        chosen = cond[:count]
        return {"actions": policy.act_chunk(chosen), "cond": chosen}

    # -- steps -----------------------------------------------------------------------------

    @staticmethod
    def nfes(config: MetaWorldConfig, objective: Any) -> list[int]:
        """The NFEs to evaluate; behaviour cloning has exactly one network call."""
        return [1] if _source_scale(objective) == 0 else config.nfe_list()

    @staticmethod
    def _demos(config: MetaWorldConfig, ctx: RunContext) -> tuple[Demos, DemoStats | None]:
        keys = tuple(k.strip() for k in config.obs_keys.split(",") if k.strip())
        if config.data:
            path = Path(config.data)
            split = "train" if _has_mask(path) else ""
            return read_demos(path, keys, split), None
        stored = (ctx.run_dir or ctx.out_dir) / DEMO_FILE
        if ctx.restore_only and stored.is_file():
            return read_demos(stored), None
        bar = ctx.progress(config.demos, f"expert demonstrations ({config.env})")
        demos, stats = collect_demos(
            config.env,
            config.demos,
            seed=ctx.seed,
            noise=config.noise,
            multimodal=config.multimodal,
            horizon=config.horizon,
            progress=bar.update,
        )
        bar.close()
        if ctx.is_main:
            write_demos(ctx.out_dir / DEMO_FILE, demos)
        # read back through the loader a user's file goes through
        return read_demos(ctx.out_dir / DEMO_FILE) if ctx.is_main else demos, stats

    @staticmethod
    def _train(
        config: MetaWorldConfig, ctx: RunContext, demos: Demos
    ) -> tuple[nn.Module, Any, Tensor]:
        cond_np, actions_np = chunk_pairs(demos, config.history, config.chunk)
        cond, actions = torch.from_numpy(cond_np), torch.from_numpy(actions_np)
        obs_dim = demos.demos[0].observations.shape[1]
        action_dim = demos.demos[0].actions.shape[1]
        torch.manual_seed(ctx.seed)
        model = ctx.component("flow", obs_dim=obs_dim, action_dim=action_dim)
        model.encoder.set_statistics(cond.mean(dim=0), cond.std(dim=0))
        objective = ctx.component("objective", flow_ratio=0.5, adaptive_power=0.0)
        trained_objective = objective
        if config.dispersive != "none":
            trained_objective = Dispersive(
                objective,
                config.dispersive,
                config.dispersive_weight,
                config.dispersive_tau,
                config.dispersive_layer,
            )

        def next_batch(generator: torch.Generator) -> Batch:
            index = torch.randint(0, cond.shape[0], (config.train.batch_size,), generator=generator)
            return {"x1": actions[index], "cond": cond[index]}

        result = train(ctx, model, trained_objective, next_batch, config.train)
        return result.eval_model.cpu().eval(), objective, cond

    @staticmethod
    def _embedding_metrics(
        config: MetaWorldConfig, model: nn.Module, cond: Tensor
    ) -> dict[str, float]:
        chosen = cond[torch.randperm(cond.shape[0], generator=torch.Generator().manual_seed(0))]
        encoder = model.encoder
        assert isinstance(encoder, ObservationEncoder)
        with torch.no_grad():
            layers = encoder.layers(chosen[:1024])
        return {f"erank_{name}": effective_rank(value) for name, value in layers.items()}

    def _policy(
        self, config: MetaWorldConfig, ctx: RunContext, model: nn.Module, objective: Any, nfe: int
    ) -> ChunkedPolicy:
        sampler = ctx.component("sampler", steps=nfe)
        return ChunkedPolicy(
            model,
            sampler,
            history=config.history,
            chunk=config.chunk,
            action_dim=int(getattr(model, "action_dim", 0)),
            source_scale=_source_scale(objective),
            seed=ctx.seed,
        )

    def _sweep(
        self, config: MetaWorldConfig, ctx: RunContext, model: nn.Module, objective: Any, env: str
    ) -> tuple[list[dict[str, Any]], list[PolicyResult]]:
        rows, results = [], []
        nfes = self.nfes(config, objective)
        bar = ctx.progress(len(nfes) * config.episodes, "rollouts")
        for nfe in nfes:
            torch.manual_seed(ctx.seed)
            policy = self._policy(config, ctx, model, objective, nfe)
            result = evaluate_policy(
                env, policy, config.episodes, config.horizon, seed=ctx.seed, progress=bar
            )
            measured = int(getattr(policy.sampler, "nfe", nfe))
            rows.append({"head": config.objective, "nfe": measured, **result.metrics()})
            results.append(result)
        bar.close()
        return rows, results

    @staticmethod
    def _offline(
        config: MetaWorldConfig, ctx: RunContext, model: nn.Module, objective: Any
    ) -> dict[str, float]:
        path = Path(config.data)
        if not _has_mask(path):
            return {}
        keys = tuple(k.strip() for k in config.obs_keys.split(",") if k.strip())
        valid = read_demos(path, keys, "valid")
        cond_np, actions_np = chunk_pairs(valid, config.history, config.chunk)
        policy = MetaWorldTask()._policy(config, ctx, model, objective, 1)
        predicted = policy.act_chunk(torch.from_numpy(cond_np)).reshape(actions_np.shape[0], -1)
        error = (predicted - torch.from_numpy(actions_np).clamp(-1, 1)).square().mean()
        return {"valid_chunk_mse": float(error)}

    # -- report ----------------------------------------------------------------------------

    def _report(
        self,
        config: MetaWorldConfig,
        ctx: RunContext,
        demos: Demos,
        stats: DemoStats | None,
        rows: list[dict[str, Any]],
        results: list[PolicyResult],
        metrics: dict[str, float],
        model: nn.Module,
        objective: Any,
    ) -> None:
        env = demos.env_name
        regulariser = (
            "no dispersive term"
            if config.dispersive == "none"
            else f"dispersive {config.dispersive} (weight {config.dispersive_weight},"
            f" tau {config.dispersive_tau}, layer {config.dispersive_layer})"
        )
        source = f"the user's file {config.data}" if config.data else f"`{DEMO_FILE}`"
        ctx.report.add_text(
            f"Meta-World `{env}`: {len(demos.demos)} demonstrations from {source}; policy"
            f" `{config.objective}` with {regulariser}, history {config.history}, chunk"
            f" {config.chunk}, {config.train.steps} training steps. Evaluation: {config.episodes}"
            f" seeded episodes of at most {config.horizon} steps per NFE on the task's test"
            " placements (never seen in training); intervals are 95 % Wilson intervals."
        )
        demo_modes = mode_shares([d.mode for d in demos.demos])
        demo_row: dict[str, Any] = {
            "demonstrations": len(demos.demos),
            "left": demo_modes["left"],
            "straight": demo_modes["straight"],
            "right": demo_modes["right"],
        }
        if stats is not None:
            demo_row["expert success"] = stats.success_rate
            demo_row["attempts"] = stats.attempted
        ctx.report.add_table("Demonstrations (modes: side of the detour)", [demo_row])
        table = [
            {
                "NFE": r["nfe"],
                "success": r["success"],
                "95% interval": f"[{r['success_low']:.2f}, {r['success_high']:.2f}]",
                "return": r["return"],
                "latency ms (median)": r["latency_ms"],
                "latency ms (p95)": r["latency_p95_ms"],
                "left": r["mode_left"],
                "straight": r["mode_straight"],
                "right": r["mode_right"],
            }
            for r in rows
        ]
        ctx.report.add_table("Closed-loop evaluation", table)
        ctx.report.add_table(
            "Effective rank of the encoder embeddings (demonstration observations)",
            [{k: v for k, v in metrics.items() if k.startswith("erank_")}],
        )
        path = ctx.report.add_figure("success-vs-nfe.png", "success rate against NFE and latency")
        success_vs_nfe(path, rows)
        first = results[0]
        path = ctx.report.add_figure(
            "hand-paths.png",
            f"hand paths from above of the {len(first.observations)} evaluation episodes at"
            f" NFE {rows[0]['nfe']}, coloured by the side they went round on",
        )
        modes = [episode_mode(env, o) for o in first.observations]
        trajectory_plot(path, first.observations, modes, f"{env}: policy rollouts")
        if config.render:
            self._strip(config, ctx, model, objective, env, rows)

    def _strip(
        self,
        config: MetaWorldConfig,
        ctx: RunContext,
        model: nn.Module,
        objective: Any,
        env: str,
        rows: list[dict[str, Any]],
    ) -> None:
        best = max(rows, key=lambda r: (r["success"], -r["latency_ms"]))
        policy = self._policy(config, ctx, model, objective, int(best["nfe"]))
        every = max(1, config.horizon // 16)
        try:
            result = evaluate_policy(
                env, policy, 1, config.horizon, seed=ctx.seed, frame_every=every
            )
        except Exception as error:  # off-screen rendering needs EGL or OSMesa
            ctx.report.add_text(
                f"No rendered strip: MuJoCo could not render off-screen ({type(error).__name__}:"
                f" {error}); the hand paths above stand in for it."
            )
            return
        frames = result.first.frames if result.first is not None else []
        if not frames:
            return
        path = ctx.report.add_figure(
            "rollout.png", f"a rollout of the best setting (NFE {best['nfe']}), rendered off-screen"
        )
        status = "success" if result.successes[0] else "failure"
        rollout_strip(path, frames, f"{env}, NFE {best['nfe']}: {status}")

    @staticmethod
    def _report_offline(
        ctx: RunContext, config: MetaWorldConfig, demos: Demos, metrics: dict[str, float]
    ) -> None:
        name = demos.env_name or "an unnamed environment"
        scored = (
            f"valid chunk MSE {metrics['valid_chunk_mse']:.4f} on the file's mask/valid demos"
            if "valid_chunk_mse" in metrics
            else "no mask/valid split to score on"
        )
        ctx.report.add_text(
            f"{config.data} records {name}, which this package cannot simulate: the policy was"
            f" trained on {len(demos.demos)} demos and scored offline ({scored}); no rollouts."
        )


def _source_scale(objective: Any) -> float:
    return float(getattr(objective, "source_scale", 1.0))


def _has_mask(path: Path) -> bool:
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            return "mask" in handle and "valid" in handle["mask"] and "train" in handle["mask"]
    except OSError:
        return False
