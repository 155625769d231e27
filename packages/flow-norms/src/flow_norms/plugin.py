"""Hook implementations of the norms plugin, and nothing else (targets import lazily)."""

from __future__ import annotations

import flow_core
from flow_core import Component

FLOW_PLUGIN_API = 1


@flow_core.hookimpl
def flow_register_norms() -> list[Component]:
    return [
        Component(
            "power",
            "flow_norms.norms.power:PowerNorm",
            "PowerNorm: running quadratic mean, approximate backward, masking (Shen et al. 2020)",
        ),
        Component(
            "layer",
            "flow_norms.norms.layer:LayerNorm",
            "LayerNorm over features on torch's fused kernel (Ba et al. 2016)",
        ),
        Component(
            "rms",
            "flow_norms.norms.layer:RMSNorm",
            "RMSNorm over features with torch's F.rms_norm (Zhang & Sennrich 2019)",
        ),
        Component(
            "batch",
            "flow_norms.norms.batch:SequenceBatchNorm",
            "BatchNorm over all valid tokens of a batch, padding masked (Ioffe & Szegedy 2015)",
        ),
    ]


@flow_core.hookimpl
def flow_register_optimizers() -> list[Component]:
    return [
        Component(
            "adamp",
            "flow_norms.optim.adamp:AdamP",
            "AdamP: Adam that projects out radial updates of scale-invariant weights (Heo 2021)",
        ),
        Component(
            "sgdp",
            "flow_norms.optim.sgdp:SGDP",
            "SGDP: SGD momentum with the AdamP projection and decoupled weight decay (Heo 2021)",
        ),
    ]


@flow_core.hookimpl
def flow_register_tasks() -> list[Component]:
    return [
        Component(
            "norms.lm",
            "flow_norms.tasks.lm:LanguageModelTask",
            "small transformer LM (pydoc text or copy/sort/addition): compare norms and optimizers",
        ),
    ]
