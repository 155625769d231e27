"""NF-synth: the NetFlow v2 dataset that ships with flow-nids.

Built by ``tools/nids/build_nf_synth.py`` from real traffic between Linux network namespaces
joined by veth links (benign HTTP, DNS and file transfers; port scans, SYN floods, slow HTTP
and brute-force logins), captured, aggregated into NF-v2 records by
:mod:`flow_nids.data.pcap` and labelled by construction (by the sending namespace's address
and the episode's time). It is a substitute for the public NF-v2 datasets, not one of them:
its numbers are never set beside theirs.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["NF_SYNTH", "nf_synth_path"]

NF_SYNTH = "nf-synth"
"""The name that selects the shipped dataset (``--set data=nf-synth``)."""


def nf_synth_path() -> Path:
    """The shipped gzip-compressed NF-v2 CSV file."""
    return Path(str(resources.files("flow_nids.data") / "nf-synth.csv.gz"))
