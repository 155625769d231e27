"""Choosing the records a task reads: the shipped NF-synth set, generated records, a user's
NF-v2 / NF-v3 CSV file, or a packet capture."""

from __future__ import annotations

from pathlib import Path

from flow_core.errors import ConfigError
from flow_nids.data.loader import NetflowTable, read_netflow, validate_frame
from flow_nids.data.nf_synth import NF_SYNTH, nf_synth_path
from flow_nids.data.pcap import flows_from_pcap
from flow_nids.data.synthetic import synthetic_netflow

__all__ = ["CAPTURE_SUFFIXES", "DATA_HELP", "load_records"]

CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap")
DATA_HELP = (
    "'nf-synth' (shipped), 'synthetic:ROWS' (generated), a path to an NF-v2/NF-v3 CSV file"
    " (.csv or .csv.gz), or a packet capture (.pcap, .pcapng)"
)


def load_records(data: str, seed: int = 0) -> NetflowTable:
    """The records ``data`` names (see :data:`DATA_HELP`), validated, in file order.

    Raises:
        ConfigError: an unknown name, a missing file, or records that break the schema.
    """
    if data == NF_SYNTH:
        table = read_netflow(nf_synth_path())
        return NetflowTable(table.frame, table.schema, "NF-synth (shipped)")
    if data.startswith("synthetic"):
        _, _, rows = data.partition(":")
        try:
            count = int(rows or 20_000)
        except ValueError:
            raise ConfigError(
                f"data={data!r}: expected synthetic:ROWS, e.g. synthetic:20000"
            ) from None
        frame = validate_frame(synthetic_netflow(count, seed=seed), "synthetic records")
        return NetflowTable(frame, "NF-v2", f"{count} generated synthetic records")
    path = Path(data).expanduser()
    if path.suffix.lower() in CAPTURE_SUFFIXES:
        frame = validate_frame(flows_from_pcap(path), str(path))
        return NetflowTable(frame, "NF-v2", f"{path} (flows aggregated from the capture)")
    if not path.exists():
        raise ConfigError(f"data={data!r} is neither a file nor a known dataset; use {DATA_HELP}")
    return read_netflow(path)
