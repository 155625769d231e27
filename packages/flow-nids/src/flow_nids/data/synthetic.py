"""A fast, schema-exact generator of NetFlow v2 records, for tests and loader benchmarks.

Not traffic: every row is drawn from a per-class distribution chosen to look like its class
(benign web, DNS and file transfers; port scans, SYN floods, slow HTTP and brute force), in
episodes of consecutive flows as in real captures. All 43 NF-v2 features, ``Label`` and
``Attack`` are filled, with the types and ranges of the published files.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from flow_nids.data.schema import BENIGN, V2_FEATURES

__all__ = ["ATTACK_CLASSES", "synthetic_netflow"]

ATTACK_CLASSES = ("PortScan", "SYNFlood", "SlowHTTP", "BruteForce")


def _class_rows(name: str, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Feature columns for ``n`` flows of class ``name``."""
    ints = rng.integers
    zeros = np.zeros(n, dtype=np.int64)
    if name == BENIGN:
        kind = ints(0, 3, n)  # 0 web, 1 DNS, 2 file transfer
        tcp = kind != 1
        pkts_in = np.where(kind == 1, 1, np.where(kind == 0, ints(4, 12, n), ints(20, 200, n)))
        pkts_out = np.where(kind == 1, 1, np.where(kind == 0, ints(4, 14, n), ints(30, 400, n)))
        size_in = np.where(kind == 1, ints(60, 90, n), ints(60, 400, n))
        size_out = np.where(kind == 1, ints(80, 300, n), ints(200, 1500, n))
        dst_port = np.where(kind == 1, 53, np.where(kind == 0, 80, 8021))
        duration = np.where(kind == 1, ints(0, 3, n), ints(5, 3000, n))
        flags, client, server = np.where(tcp, 27, 0), np.where(tcp, 27, 0), np.where(tcp, 27, 0)
        l7 = np.where(kind == 1, 5.0, np.where(kind == 0, 7.0, 0.0))
    elif name == "PortScan":
        tcp = np.ones(n, dtype=bool)
        pkts_in, pkts_out = ints(1, 3, n), ints(0, 2, n)
        size_in, size_out = np.full(n, 44), np.full(n, 40)
        dst_port = ints(1, 1024, n)
        duration = ints(0, 2, n)
        flags, client, server = np.full(n, 22), np.full(n, 2), np.full(n, 20)
        l7 = np.zeros(n)
    elif name == "SYNFlood":
        tcp = np.ones(n, dtype=bool)
        pkts_in, pkts_out = np.ones(n, dtype=np.int64), ints(0, 2, n)
        size_in, size_out = np.full(n, 40), np.full(n, 44)
        dst_port = np.full(n, 80)
        duration = zeros
        flags, client, server = np.full(n, 18), np.full(n, 2), np.full(n, 18)
        l7 = np.zeros(n)
    elif name == "SlowHTTP":
        tcp = np.ones(n, dtype=bool)
        pkts_in, pkts_out = ints(8, 40, n), ints(3, 20, n)
        size_in, size_out = ints(52, 90, n), ints(52, 70, n)
        dst_port = np.full(n, 80)
        duration = ints(20_000, 120_000, n)
        flags, client, server = np.full(n, 26), np.full(n, 26), np.full(n, 18)
        l7 = np.full(n, 7.0)
    else:  # BruteForce
        tcp = np.ones(n, dtype=bool)
        pkts_in, pkts_out = ints(5, 9, n), ints(5, 8, n)
        size_in, size_out = ints(100, 180, n), ints(120, 260, n)
        dst_port = np.full(n, 80)
        duration = ints(2, 40, n)
        flags, client, server = np.full(n, 27), np.full(n, 27), np.full(n, 27)
        l7 = np.full(n, 7.0)
    in_bytes, out_bytes = pkts_in * size_in, pkts_out * size_out
    ttl = rng.choice([63, 64], n)
    longest = np.maximum(size_in, np.where(pkts_out > 0, size_out, 0))
    shortest = np.minimum(size_in, np.where(pkts_out > 0, size_out, size_in))
    seconds = np.maximum(duration, 1) / 1000.0
    columns = {
        "IPV4_SRC_ADDR": np.array([f"10.0.{a}.{b}" for a, b in ints(0, 4, (n, 2)) + 1]),
        "L4_SRC_PORT": ints(32768, 61000, n),
        "IPV4_DST_ADDR": np.array([f"10.0.9.{b}" for b in ints(1, 4, n)]),
        "L4_DST_PORT": dst_port,
        "PROTOCOL": np.where(tcp, 6, 17),
        "L7_PROTO": l7,
        "IN_BYTES": in_bytes,
        "IN_PKTS": pkts_in,
        "OUT_BYTES": out_bytes,
        "OUT_PKTS": pkts_out,
        "TCP_FLAGS": flags,
        "CLIENT_TCP_FLAGS": client,
        "SERVER_TCP_FLAGS": server,
        "FLOW_DURATION_MILLISECONDS": duration,
        "DURATION_IN": duration,
        "DURATION_OUT": np.where(pkts_out > 0, duration, 0),
        "MIN_TTL": ttl,
        "MAX_TTL": ttl,
        "LONGEST_FLOW_PKT": longest,
        "SHORTEST_FLOW_PKT": shortest,
        "MIN_IP_PKT_LEN": shortest,
        "MAX_IP_PKT_LEN": longest,
        "SRC_TO_DST_SECOND_BYTES": in_bytes / seconds,
        "DST_TO_SRC_SECOND_BYTES": out_bytes / seconds,
        "RETRANSMITTED_IN_BYTES": zeros,
        "RETRANSMITTED_IN_PKTS": zeros,
        "RETRANSMITTED_OUT_BYTES": zeros,
        "RETRANSMITTED_OUT_PKTS": zeros,
        "SRC_TO_DST_AVG_THROUGHPUT": (8 * in_bytes / seconds).astype(np.int64),
        "DST_TO_SRC_AVG_THROUGHPUT": (8 * out_bytes / seconds).astype(np.int64),
        "NUM_PKTS_UP_TO_128_BYTES": pkts_in * (size_in <= 128) + pkts_out * (size_out <= 128),
        "NUM_PKTS_128_TO_256_BYTES": pkts_in * ((size_in > 128) & (size_in <= 256))
        + pkts_out * ((size_out > 128) & (size_out <= 256)),
        "NUM_PKTS_256_TO_512_BYTES": pkts_in * ((size_in > 256) & (size_in <= 512))
        + pkts_out * ((size_out > 256) & (size_out <= 512)),
        "NUM_PKTS_512_TO_1024_BYTES": pkts_in * ((size_in > 512) & (size_in <= 1024))
        + pkts_out * ((size_out > 512) & (size_out <= 1024)),
        "NUM_PKTS_1024_TO_1514_BYTES": pkts_in * (size_in > 1024) + pkts_out * (size_out > 1024),
        "TCP_WIN_MAX_IN": np.where(tcp, rng.choice([1024, 29200, 64240], n), 0),
        "TCP_WIN_MAX_OUT": np.where(tcp & (pkts_out > 0), rng.choice([65160, 28960], n), 0),
        "ICMP_TYPE": zeros,
        "ICMP_IPV4_TYPE": zeros,
        "DNS_QUERY_ID": np.where(l7 == 5.0, ints(0, 65536, n), 0),
        "DNS_QUERY_TYPE": np.where(l7 == 5.0, 1, 0),
        "DNS_TTL_ANSWER": np.where(l7 == 5.0, ints(0, 3600, n), 0),
        "FTP_COMMAND_RET_CODE": zeros,
    }
    return columns


def synthetic_netflow(
    rows: int, *, attack_fraction: float = 0.2, episode: int = 40, seed: int = 0
) -> pd.DataFrame:
    """``rows`` NF-v2 records (43 features, Label, Attack) in file order: benign flows with
    attack episodes of about ``episode`` flows making up ``attack_fraction`` of the rows."""
    rng = np.random.default_rng(seed)
    if not 0.0 < attack_fraction < 1.0:
        raise ValueError(f"attack_fraction must be in (0, 1), got {attack_fraction}")
    names: list[str] = []
    benign_mean = episode * (1.0 - attack_fraction) / (0.8 * attack_fraction)
    while len(names) < rows:  # a benign stretch, then an attack episode (80% attack flows)
        names.extend([BENIGN] * int(rng.integers(1, int(2 * benign_mean) + 2)))
        attack = str(rng.choice(ATTACK_CLASSES))
        mixed = np.where(
            rng.random(int(rng.integers(episode // 2, 3 * episode // 2 + 2))) < 0.8, attack, BENIGN
        )
        names.extend(str(m) for m in mixed)
    label = np.array(names[:rows], dtype=object)
    parts = {}
    for name in np.unique(label):
        index = np.flatnonzero(label == name)
        parts[str(name)] = (index, _class_rows(str(name), len(index), rng))
    frame = pd.DataFrame(index=np.arange(rows))
    for column in V2_FEATURES:
        values = np.empty(rows, dtype=object if column.startswith("IPV4") else np.float64)
        for index, columns in parts.values():
            values[index] = columns[column]
        frame[column] = values
    for column in V2_FEATURES:
        if not column.startswith("IPV4") and column not in (
            "SRC_TO_DST_SECOND_BYTES",
            "DST_TO_SRC_SECOND_BYTES",
        ):
            frame[column] = frame[column].astype(np.int64)
    frame["Label"] = (label != BENIGN).astype(np.int64)
    frame["Attack"] = label
    return frame
