"""GS-Jacobi decoding of TARFlow-family flows (Liu & Qin 2025, arXiv 2505.12849).

Sequential decoding inverts each block token by token (T − 1 transformer passes). Jacobi
iteration updates all tokens at once,

    x_i^{(k+1)} = z_i·exp(a_i(x_<i^{(k)})) + μ_i(x_<i^{(k)}),

and is exact after at most T − 1 iterations (iteration k fixes token k for good), but usually
converges in far fewer. GS-Jacobi cuts the sequence into G modules, runs Jacobi inside a
module and moves on Gauss-Seidel style once it has converged (the converged prefix goes into
a key-value cache). Iteration stops when the largest change max|x^{(k+1)} − x^{(k)}| falls
below ``tolerance`` or after ``max_iterations`` (0: the module's length, which is exact).
The Convergence Ranking Metric picks the ``tough_blocks`` hardest blocks, which get
``tough_modules`` modules; the others get ``modules``; the Initial Guessing Metric picks each
block's starting point (:mod:`flow_images.gsjacobi.metrics`).
"""

from __future__ import annotations

import itertools
from typing import ClassVar

import torch
from torch import Tensor, nn

from flow_core.errors import ConfigError
from flow_images.gsjacobi.metrics import convergence_ranking_metric, initial_guess
from flow_images.tarflow.block import AutoregressiveBlock
from flow_images.tarflow.guidance import Guidance
from flow_images.tarflow.model import as_family
from flow_images.tarflow.transformer import KVCache

__all__ = ["GSJacobiSampler", "module_bounds"]


def module_bounds(tokens: int, modules: int) -> list[tuple[int, int]]:
    """Split tokens 1 … T − 1 (token 0 is exact) into ``modules`` contiguous ranges."""
    edges = torch.linspace(1, tokens, min(modules, tokens - 1) + 1).round().long().tolist()
    return [(s, e) for s, e in itertools.pairwise(edges) if e > s]


class GSJacobiSampler:
    """``sample(model, z, cond)``: invert a TARFlow-family flow by GS-Jacobi iteration.

    After a call, ``iterations`` holds the Jacobi iterations spent on each block (in the
    flow's block order), ``crm`` each block's Convergence Ranking Metric, ``initial`` each
    block's IGM choice, and ``nfe`` the transformer passes in all (sequential decoding: N·(T−1)).

    Args:
        modules: GS modules G of an ordinary block (1: plain Jacobi over the sequence).
        tough_modules: modules of the ``tough_blocks`` blocks with the highest CRM.
        tough_blocks: how many blocks count as tough.
        max_iterations: cap on the iterations per module (0: the module's length, exact).
        tolerance: stop a module when max|Δx| < tolerance.
        initial: ``igm`` (the metric chooses), ``input`` or ``zeros``.
    """

    model_kind: ClassVar[str] = "invertible"

    def __init__(
        self,
        modules: int = 1,
        tough_modules: int = 4,
        tough_blocks: int = 1,
        max_iterations: int = 0,
        tolerance: float = 1e-5,
        initial: str = "igm",
    ) -> None:
        for name, value in (("modules", modules), ("tough_modules", tough_modules)):
            if value < 1:
                raise ConfigError(f"gs-jacobi: {name} must be >= 1, got {value}")
        if tough_blocks < 0 or max_iterations < 0:
            raise ConfigError(
                f"gs-jacobi: tough_blocks and max_iterations must be >= 0, got "
                f"{tough_blocks} and {max_iterations}"
            )
        if not tolerance >= 0:
            raise ConfigError(f"gs-jacobi: tolerance must be >= 0, got {tolerance}")
        if initial not in ("igm", "input", "zeros"):
            raise ConfigError(
                f"gs-jacobi: initial must be one of igm, input, zeros; got {initial!r}"
            )
        self.modules, self.tough_modules, self.tough_blocks = modules, tough_modules, tough_blocks
        self.max_iterations, self.tolerance, self.initial_rule = max_iterations, tolerance, initial
        self.nfe = 0
        self.iterations: list[int] = []
        self.crm: list[float] = []
        self.initial: list[str] = []

    @torch.no_grad()
    def sample(self, model: nn.Module, x0: Tensor, cond: Tensor | None = None) -> Tensor:
        flow, guidance = as_family(model, "sampler 'gs-jacobi'")
        tokens = flow.tokens(x0)
        labels = flow.labels(cond, x0.shape[0], x0.device)
        blocks = flow.flow_blocks
        count = len(blocks)
        self.iterations, self.crm, self.initial = [0] * count, [0.0] * count, [""] * count
        self.nfe = 0
        for index in reversed(range(count)):
            block = blocks[index]
            z = block.order(tokens)
            self.crm[index] = convergence_ranking_metric(block, z, labels, guidance)
            self.nfe += 1
        tough = sorted(range(count), key=lambda k: -self.crm[k])[: self.tough_blocks]
        for index in reversed(range(count)):
            block = blocks[index]
            modules = self.tough_modules if index in tough else self.modules
            x = self._invert(block, block.order(tokens), labels, guidance, index, modules)
            tokens = block.order(x)
        return flow.image(tokens)

    def _invert(
        self,
        block: AutoregressiveBlock,
        z: Tensor,
        labels: Tensor | None,
        guidance: Guidance | None,
        index: int,
        modules: int,
    ) -> Tensor:
        """One block's input from its output ``z`` (block order)."""
        if self.initial_rule == "igm":
            x, self.initial[index] = initial_guess(block, z, labels, guidance)
            self.nfe += 2
        else:
            x = z.clone() if self.initial_rule == "input" else torch.zeros_like(z)
            x[:, 0] = z[:, 0]
            self.initial[index] = self.initial_rule
        cache = KVCache()
        for start, end in module_bounds(block.tokens, modules):
            if start - 1 > cache.length:  # the converged prefix goes into the cache
                block.predict(x[:, cache.length : start - 1], labels, guidance, cache)
                self.nfe += 1
            cap = self.max_iterations or end - start
            for _ in range(cap):
                mu, a = block.predict(x[:, start - 1 : end - 1], labels, guidance, cache, False)
                update = z[:, start:end] * torch.exp(a) + mu
                change = float((update - x[:, start:end]).abs().max())
                x[:, start:end] = update
                self.iterations[index] += 1
                self.nfe += 1
                if change < self.tolerance:
                    break
        return x
