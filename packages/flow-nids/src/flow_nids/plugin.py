"""Hook implementations of the nids plugin, and nothing else."""

from __future__ import annotations

import flow_core
from flow_core import Component

FLOW_PLUGIN_API = 1


@flow_core.hookimpl
def flow_register_tasks() -> list[Component]:
    return [
        Component(
            "nids.flowtransformer",
            "flow_nids.tasks.flowtransformer:FlowTransformerTask",
            "FlowTransformer intrusion detection on NetFlow v2 records (F1, per-attack recall,"
            " size, flows/s) beside tree baselines",
        ),
        Component(
            "nids.sweep",
            "flow_nids.tasks.sweep:SweepTask",
            "FlowTransformer heads x input encodings table on one leakage-free split",
        ),
        Component(
            "nids.detect",
            "flow_nids.tasks.detect:DetectTask",
            "one verdict per flow of a pcap or NetFlow CSV from a trained nids.flowtransformer run",
        ),
    ]
