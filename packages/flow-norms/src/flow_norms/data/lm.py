"""Data for ``norms.lm``: a real English corpus that ships with Python, and synthetic tasks.

* ``pydoc`` — the text of the standard library's ``pydoc_data.topics`` module (the help
  pages of the Python language reference, about 465k characters of English prose and code),
  modelled character by character; the first 90 % is for training, the last 10 % for validation.
* ``copy``, ``sort``, ``addition`` — synthetic sequence-to-sequence tasks written as one
  sequence, prompt then answer (``314|314|``, ``314|134|``, ``12+7=19|``; answers end with
  ``|``), with random lengths, so batches are right-padded and the padding mask matters. The
  loss is on the answer tokens only.

Every batch is a dict of ``tokens`` (B, T + 1), ``loss_mask`` (B, T) (1 where the next token
is scored) and ``padding_mask`` (B, T) (True at padding), for next-token prediction.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

__all__ = ["DATASETS", "CharCorpus", "SyntheticTask", "make_dataset"]

DATASETS = ("pydoc", "copy", "sort", "addition")
Batch = dict[str, torch.Tensor]


@functools.lru_cache(maxsize=1)
def _pydoc_text() -> str:
    from pydoc_data.topics import topics

    return "\n\n".join(topics[key] for key in sorted(topics))


class CharCorpus:
    """Character-level language modelling on the pydoc_data text."""

    def __init__(self, seq_len: int, val_fraction: float = 0.1) -> None:
        text = _pydoc_text()
        self.vocab = sorted(set(text))
        lookup = {c: i for i, c in enumerate(self.vocab)}
        data = torch.tensor([lookup[c] for c in text], dtype=torch.long)
        split = int(len(data) * (1 - val_fraction))
        self.train, self.val = data[:split], data[split:]
        self.seq_len = seq_len
        self.vocab_size = len(self.vocab)
        self.max_len = seq_len

    def _windows(self, data: torch.Tensor, starts: torch.Tensor) -> Batch:
        offsets = torch.arange(self.seq_len + 1)
        tokens = data[starts.unsqueeze(1) + offsets]
        shape = (tokens.shape[0], self.seq_len)
        return {
            "tokens": tokens,
            "loss_mask": torch.ones(shape),
            "padding_mask": torch.zeros(shape, dtype=torch.bool),
        }

    def train_batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        high = len(self.train) - self.seq_len - 1
        return self._windows(self.train, torch.randint(0, high, (batch_size,), generator=generator))

    def val_batches(self, batch_size: int, count: int) -> list[Batch]:
        """``count`` batches of windows spread evenly over the validation text."""
        high = len(self.val) - self.seq_len - 1
        starts = torch.linspace(0, high, batch_size * count).long()
        return [self._windows(self.val, row) for row in starts.view(count, batch_size)]


# token ids of the synthetic tasks: digits 0-9, then these
_PLUS, _EQUALS, _SEP, _PAD = 10, 11, 12, 13
SYNTHETIC_VOCAB = 14


def _copy(digits: list[int]) -> tuple[list[int], list[int]]:
    return [*digits, _SEP], [*digits, _SEP]


def _sort(digits: list[int]) -> tuple[list[int], list[int]]:
    return [*digits, _SEP], [*sorted(digits), _SEP]


def _number(generator: torch.Generator, max_digits: int) -> int:
    length = int(torch.randint(1, max_digits + 1, (), generator=generator))
    return int(torch.randint(0, 10**length, (), generator=generator))


class SyntheticTask:
    """Copy, sort or add digit strings of random length (1 to ``max_len`` digits / operands of
    up to ``max_len // 2`` digits for addition)."""

    def __init__(self, name: str, max_len: int) -> None:
        self.name = name
        self.max_digits = max_len
        self.vocab_size = SYNTHETIC_VOCAB
        # longest prompt + answer: 2·(max_len + 1) for copy/sort; a+b=c| for addition
        self.max_len = 2 * max_len + 2 if name != "addition" else 3 * (max_len // 2) + 4

    def _example(self, generator: torch.Generator) -> tuple[list[int], list[int]]:
        if self.name == "addition":
            width = max(1, self.max_digits // 2)
            a, b = _number(generator, width), _number(generator, width)
            prompt = [*map(int, str(a)), _PLUS, *map(int, str(b)), _EQUALS]
            return prompt, [*map(int, str(a + b)), _SEP]
        length = int(torch.randint(1, self.max_digits + 1, (), generator=generator))
        digits = torch.randint(0, 10, (length,), generator=generator).tolist()
        make: Callable[[list[int]], tuple[list[int], list[int]]] = (
            _copy if self.name == "copy" else _sort
        )
        return make(digits)

    def train_batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        examples = [self._example(generator) for _ in range(batch_size)]
        width = max(len(p) + len(a) for p, a in examples)
        tokens = torch.full((batch_size, width), _PAD, dtype=torch.long)
        loss_mask = torch.zeros(batch_size, width - 1)
        padding = torch.ones(batch_size, width - 1, dtype=torch.bool)
        for row, (prompt, answer) in enumerate(examples):
            sequence = prompt + answer
            tokens[row, : len(sequence)] = torch.tensor(sequence)
            loss_mask[row, len(prompt) - 1 : len(sequence) - 1] = 1.0
            padding[row, : len(sequence) - 1] = False
        return {"tokens": tokens, "loss_mask": loss_mask, "padding_mask": padding}

    def val_batches(self, batch_size: int, count: int) -> list[Batch]:
        """Fixed validation batches, drawn from a generator separate from training's."""
        generator = torch.Generator().manual_seed(2_147_483_647)
        return [self.train_batch(batch_size, generator) for _ in range(count)]


def make_dataset(name: str, seq_len: int, max_len: int) -> CharCorpus | SyntheticTask:
    """The dataset called ``name`` (one of :data:`DATASETS`)."""
    if name == "pydoc":
        return CharCorpus(seq_len)
    return SyntheticTask(name, max_len)
