"""The training loop's batches, with the objective's batch preparation run one step ahead.

An objective that implements :class:`~flow_core.protocols.BatchPreparer` (OT-CFM: the exact
or entropic minibatch pairing) has work on each batch that does not depend on the model. The
:class:`BatchStream` draws batch k+1 on the caller's thread right after handing out batch k,
and prepares it in one background thread while step k trains: POT's network simplex,
SciPy's assignment and torch's kernels release the GIL, so on a machine with a free core the
pairing leaves the critical path.

Determinism: the preparation of the batch of step s draws only from a generator seeded by
(run seed, rank, stage, s), so the pairs are the same whether the preparation runs ahead, on
the caller's thread, or after a resume. The data generator advances when a batch is drawn,
which is one step early when running ahead; :meth:`BatchStream.data_state` returns the state
from which the next batch *not yet handed out* is drawn, which is what a checkpoint saves.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

import torch

from flow_core.protocols import BatchPreparer

if TYPE_CHECKING:
    from flow_core.protocols import Batch

__all__ = ["BatchStream", "preparation_generator"]

_SEED_MODULUS = 2**63 - 1


def preparation_generator(
    seed: int, rank: int, stage: str, step: int, device: torch.device
) -> torch.Generator:
    """The generator for preparing the batch of ``step`` (1-based) of ``stage``."""
    mixed = ((seed * 1_000_003 + rank) * 4_294_967_311 + zlib.crc32(stage.encode())) * 1_000_033
    generator = torch.Generator(device=device)
    generator.manual_seed((mixed + step) % _SEED_MODULUS)
    return generator


class BatchStream:
    """Batches for :func:`flow_core.training.train`, prepared ahead when the objective can.

    Args:
        next_batch: draws one batch from the data generator.
        generator: the data generator (checkpointed by the training loop).
        move: puts a drawn batch on the training device.
        objective: the objective; its ``prepare_batch`` is used when it has one.
        seed, rank, stage: identify the run's preparation generators.
        ahead: prepare the next batch in a background thread (False: on the caller's
            thread, just before the step; the numbers are the same).
    """

    def __init__(
        self,
        next_batch: Callable[[torch.Generator], Batch],
        generator: torch.Generator,
        move: Callable[[Batch], Batch],
        objective: object,
        *,
        device: torch.device,
        seed: int,
        rank: int,
        stage: str,
        ahead: bool,
    ) -> None:
        self._next_batch = next_batch
        self._generator = generator
        self._move = move
        self._preparer = objective if isinstance(objective, BatchPreparer) else None
        self._device = device
        self._seed, self._rank, self._stage = seed, rank, stage
        self._executor = (
            ThreadPoolExecutor(1, thread_name_prefix="flow-prepare")
            if ahead and self._preparer is not None
            else None
        )
        self._pending: Future[Batch] | None = None
        self._state_before_pending: torch.Tensor | None = None

    def take(self, step: int, last_step: int) -> Batch:
        """The prepared batch of ``step`` (1-based); starts preparing ``step + 1`` when
        running ahead and ``step < last_step``."""
        if self._pending is not None:
            batch = self._pending.result()
        else:
            batch = self._prepare(self._move(self._next_batch(self._generator)), step)
        self._pending = None
        self._state_before_pending = None
        if self._executor is not None and step < last_step:
            self._state_before_pending = self._generator.get_state()
            upcoming = self._move(self._next_batch(self._generator))
            self._pending = self._executor.submit(self._prepare, upcoming, step + 1)
        return batch

    def data_state(self) -> torch.Tensor:
        """The data generator's state before the first batch not yet handed out."""
        if self._state_before_pending is not None:
            return self._state_before_pending
        return self._generator.get_state()

    def close(self) -> None:
        """Stop the background thread (waiting for a preparation in flight)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        self._pending = None

    def _prepare(self, batch: Batch, step: int) -> Batch:
        if self._preparer is None:
            return batch
        generator = preparation_generator(self._seed, self._rank, self._stage, step, self._device)
        return self._preparer.prepare_batch(batch, generator)
