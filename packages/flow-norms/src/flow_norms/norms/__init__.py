"""Normalisation layers sharing one calling convention: ``Norm(num_features, **options)``,
``forward(x, padding_mask=None)`` on channels-last input, ``padding_mask`` True at padding."""

from flow_norms.norms._inputs import NormInputError
from flow_norms.norms.batch import SequenceBatchNorm
from flow_norms.norms.layer import LayerNorm, RMSNorm
from flow_norms.norms.power import PowerNorm

__all__ = ["LayerNorm", "NormInputError", "PowerNorm", "RMSNorm", "SequenceBatchNorm"]
