"""The NetFlow v2 (NF-v2) record schema, and its v3 extension.

NF-v2 is the 43-feature NetFlow format of Sarhan, Layeghy and Portmann, "Towards a Standard
Feature Set for Network Intrusion Detection System Datasets" (2021, arXiv:2101.11315), used by
NF-UNSW-NB15-v2, NF-ToN-IoT-v2 and NF-CSE-CIC-IDS2018-v2; each row is one flow, followed by
``Label`` (0 benign, 1 attack) and ``Attack`` (the class name). NetFlow v3 (Luay et al. 2025,
arXiv:2503.04404) adds ten temporal fields. Columns are always selected by name, never by
position.

FlowTransformer (Manocchio, Layeghy, Lo, Kulatilake, Portmann and Sarhan 2023,
arXiv:2304.14746) uses 37 of the 43 features: it drops both addresses, the three DNS fields
and ``FTP_COMMAND_RET_CODE``; nine of them are categorical.
"""

from __future__ import annotations

__all__ = [
    "ADDRESS_FEATURES",
    "BENIGN",
    "CATEGORICAL_FEATURES",
    "COUNTER_FEATURES",
    "MODEL_FEATURES",
    "NUMERIC_FEATURES",
    "V2_FEATURES",
    "V3_EXTRA_FEATURES",
]

V2_FEATURES: tuple[str, ...] = (
    "IPV4_SRC_ADDR",
    "L4_SRC_PORT",
    "IPV4_DST_ADDR",
    "L4_DST_PORT",
    "PROTOCOL",
    "L7_PROTO",
    "IN_BYTES",
    "IN_PKTS",
    "OUT_BYTES",
    "OUT_PKTS",
    "TCP_FLAGS",
    "CLIENT_TCP_FLAGS",
    "SERVER_TCP_FLAGS",
    "FLOW_DURATION_MILLISECONDS",
    "DURATION_IN",
    "DURATION_OUT",
    "MIN_TTL",
    "MAX_TTL",
    "LONGEST_FLOW_PKT",
    "SHORTEST_FLOW_PKT",
    "MIN_IP_PKT_LEN",
    "MAX_IP_PKT_LEN",
    "SRC_TO_DST_SECOND_BYTES",
    "DST_TO_SRC_SECOND_BYTES",
    "RETRANSMITTED_IN_BYTES",
    "RETRANSMITTED_IN_PKTS",
    "RETRANSMITTED_OUT_BYTES",
    "RETRANSMITTED_OUT_PKTS",
    "SRC_TO_DST_AVG_THROUGHPUT",
    "DST_TO_SRC_AVG_THROUGHPUT",
    "NUM_PKTS_UP_TO_128_BYTES",
    "NUM_PKTS_128_TO_256_BYTES",
    "NUM_PKTS_256_TO_512_BYTES",
    "NUM_PKTS_512_TO_1024_BYTES",
    "NUM_PKTS_1024_TO_1514_BYTES",
    "TCP_WIN_MAX_IN",
    "TCP_WIN_MAX_OUT",
    "ICMP_TYPE",
    "ICMP_IPV4_TYPE",
    "DNS_QUERY_ID",
    "DNS_QUERY_TYPE",
    "DNS_TTL_ANSWER",
    "FTP_COMMAND_RET_CODE",
)
"""The 43 NF-v2 features, in the order of the published files."""

V3_EXTRA_FEATURES: tuple[str, ...] = (
    "FLOW_START_MILLISECONDS",
    "FLOW_END_MILLISECONDS",
    "SRC_TO_DST_IAT_MIN",
    "SRC_TO_DST_IAT_MAX",
    "SRC_TO_DST_IAT_AVG",
    "SRC_TO_DST_IAT_STDDEV",
    "DST_TO_SRC_IAT_MIN",
    "DST_TO_SRC_IAT_MAX",
    "DST_TO_SRC_IAT_AVG",
    "DST_TO_SRC_IAT_STDDEV",
)
"""The ten temporal fields NetFlow v3 adds to the 43 of v2."""

ADDRESS_FEATURES: tuple[str, ...] = ("IPV4_SRC_ADDR", "IPV4_DST_ADDR")
"""Dotted-quad strings; every other feature is a number."""

CATEGORICAL_FEATURES: tuple[str, ...] = (
    "CLIENT_TCP_FLAGS",
    "L4_SRC_PORT",
    "TCP_FLAGS",
    "ICMP_IPV4_TYPE",
    "ICMP_TYPE",
    "PROTOCOL",
    "SERVER_TCP_FLAGS",
    "L4_DST_PORT",
    "L7_PROTO",
)
"""FlowTransformer's nine categorical features."""

_DROPPED = (*ADDRESS_FEATURES, "DNS_QUERY_ID", "DNS_QUERY_TYPE", "DNS_TTL_ANSWER")
_DROPPED += ("FTP_COMMAND_RET_CODE",)

MODEL_FEATURES: tuple[str, ...] = tuple(f for f in V2_FEATURES if f not in _DROPPED)
"""The 37 features FlowTransformer models."""

NUMERIC_FEATURES: tuple[str, ...] = tuple(
    f for f in MODEL_FEATURES if f not in CATEGORICAL_FEATURES
)
"""The 28 numeric features of :data:`MODEL_FEATURES`, log-scaled by the preprocessing."""

COUNTER_FEATURES: tuple[str, ...] = tuple(f for f in V2_FEATURES if f not in ADDRESS_FEATURES)
"""Numeric NF-v2 fields that can never be negative (all of them but the addresses)."""

BENIGN = "Benign"
"""The canonical benign class name in the ``Attack`` column."""
