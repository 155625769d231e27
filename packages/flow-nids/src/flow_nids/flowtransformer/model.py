"""The FlowTransformer classifier: encoding, sequence model, head, MLP, one logit.

Manocchio et al. 2023 (arXiv:2304.14746): input encoding → transformer blocks → classification
head → MLP ([128], dropout 0.1) → a logit whose sigmoid is P(attack) for the window's last
flow. Trained with binary cross-entropy on class-balanced batches.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from torch.nn import functional

from flow_nids.flowtransformer.encodings import InputEncoding
from flow_nids.flowtransformer.heads import Head
from flow_nids.flowtransformer.sequence import SequenceModel

__all__ = ["FlowTransformer", "balanced_bce"]


class FlowTransformer(nn.Module):
    """Window of flows (numeric (B, T, F), categorical (B, T, C)) → attack logit (B,).

    Args:
        numeric, categorical, vocabulary: input sizes (features, fields, codes per field).
        window: flows per window ``T``.
        encoding, sequence, head: names from ``ENCODINGS``, ``SEQUENCE_MODELS``, ``HEADS``.
        hidden: width of the MLP after the head.
        norm: a registered norm for the transformer blocks (default LayerNorm).
    """

    def __init__(
        self,
        numeric: int,
        categorical: int,
        vocabulary: int,
        window: int = 8,
        encoding: str = "record",
        sequence: str = "basic",
        head: str = "last-token",
        hidden: int = 128,
        dropout: float = 0.1,
        norm: str | None = None,
    ) -> None:
        super().__init__()
        self.encoding = InputEncoding(encoding, numeric, categorical, vocabulary)
        width = self.encoding.width
        tokens = window + (head == "cls")
        self.cls = nn.Parameter(torch.zeros(1, 1, width)) if head == "cls" else None
        self.sequence = SequenceModel(sequence, width, tokens, dropout=dropout, norm=norm)
        self.head = Head(head, width, tokens)
        self.mlp = nn.Sequential(
            nn.Linear(self.head.out_features, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, 1),
        )

    def forward(self, numeric: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        x = self.encoding(numeric, categorical)
        if self.cls is not None:
            x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)
        logits: torch.Tensor = self.mlp(self.head(self.sequence(x)))
        return logits.squeeze(-1)

    def parameter_count(self) -> int:
        """Trainable parameters (the paper's model size)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def balanced_bce(
    model: nn.Module, batch: Mapping[str, torch.Tensor]
) -> tuple[torch.Tensor, dict[str, float]]:
    """Binary cross-entropy of the window labels (the batch itself is class-balanced)."""
    logits = model(batch["numeric"], batch["categorical"])
    target = batch["label"].to(logits.dtype)
    loss = functional.binary_cross_entropy_with_logits(logits, target)
    accuracy = ((logits > 0).to(target.dtype) == target).float().mean().item()
    return loss, {"loss": loss.item(), "batch_accuracy": accuracy}
