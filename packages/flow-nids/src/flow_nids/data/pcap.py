"""Packet captures to NetFlow v2 records: our own flow aggregator over dpkt.

Packets (Ethernet, Linux cooked or raw IPv4 captures) are grouped into bidirectional flows by
protocol and endpoints; the first packet's sender is the flow's source (the client). A flow
ends after ``idle_timeout`` seconds without packets, after ``active_timeout`` seconds, or when
a new TCP SYN follows a FIN or RST. Each flow becomes one row with the 43 NF-v2 features of
Sarhan, Layeghy and Portmann (2021, arXiv:2101.11315), computed as nProbe defines them:
``IN_*`` counts the source → destination direction and ``OUT_*`` the reverse, the packet
lengths are IPv4 total lengths, throughputs are bits per second, retransmissions are TCP
segments whose payload ends at or before the highest sequence number already seen in their
direction, and ``ICMP_TYPE`` is ``type·256 + code``.

One difference from nProbe, said plainly: ``L7_PROTO`` comes from the server port (HTTP 7,
DNS 5, FTP 1, SSH 92, TLS 91, else 0, nDPI's numbering), not from deep packet inspection.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from flow_core.errors import ConfigError
from flow_nids.data.schema import V2_FEATURES

__all__ = ["flows_from_pcap", "records_from_packets"]

_L7_BY_PORT = {80: 7, 8080: 7, 53: 5, 21: 1, 22: 92, 443: 91}
_BUCKETS = (128, 256, 512, 1024)
_FIN, _SYN, _RST = 0x01, 0x02, 0x04


@dataclass
class _Direction:
    packets: int = 0
    octets: int = 0
    first: float = 0.0
    last: float = 0.0
    flags: int = 0
    window: int = 0
    retransmitted_packets: int = 0
    retransmitted_octets: int = 0
    next_sequence: int | None = None

    def add(self, time: float, length: int) -> None:
        if self.packets == 0:
            self.first = time
        self.packets += 1
        self.octets += length
        self.last = time


@dataclass
class _Flow:
    source: tuple[str, int]
    destination: tuple[str, int]
    protocol: int
    first: float
    last: float = 0.0
    forward: _Direction = field(default_factory=_Direction)
    backward: _Direction = field(default_factory=_Direction)
    ttl: list[int] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    icmp: int = 0
    dns: tuple[int, int, int] = (0, 0, 0)
    ftp_code: int = 0
    closed: bool = False

    def record(self) -> dict[str, float | str]:
        seconds = max(self.last - self.first, 0.0)
        rate = max(seconds, 1e-3)
        lengths = np.asarray(self.lengths)
        bucket = np.searchsorted(np.asarray(_BUCKETS), lengths, side="left")
        fw, bw = self.forward, self.backward
        server_port = self.destination[1]
        return {
            "IPV4_SRC_ADDR": self.source[0],
            "L4_SRC_PORT": self.source[1],
            "IPV4_DST_ADDR": self.destination[0],
            "L4_DST_PORT": server_port,
            "PROTOCOL": self.protocol,
            "L7_PROTO": _L7_BY_PORT.get(server_port, 0) if self.protocol in (6, 17) else 0,
            "IN_BYTES": fw.octets,
            "IN_PKTS": fw.packets,
            "OUT_BYTES": bw.octets,
            "OUT_PKTS": bw.packets,
            "TCP_FLAGS": fw.flags | bw.flags,
            "CLIENT_TCP_FLAGS": fw.flags,
            "SERVER_TCP_FLAGS": bw.flags,
            "FLOW_DURATION_MILLISECONDS": round(seconds * 1000),
            "DURATION_IN": round((fw.last - fw.first) * 1000) if fw.packets else 0,
            "DURATION_OUT": round((bw.last - bw.first) * 1000) if bw.packets else 0,
            "MIN_TTL": min(self.ttl),
            "MAX_TTL": max(self.ttl),
            "LONGEST_FLOW_PKT": int(lengths.max()),
            "SHORTEST_FLOW_PKT": int(lengths.min()),
            "MIN_IP_PKT_LEN": int(lengths.min()),
            "MAX_IP_PKT_LEN": int(lengths.max()),
            "SRC_TO_DST_SECOND_BYTES": fw.octets / rate,
            "DST_TO_SRC_SECOND_BYTES": bw.octets / rate,
            "RETRANSMITTED_IN_BYTES": fw.retransmitted_octets,
            "RETRANSMITTED_IN_PKTS": fw.retransmitted_packets,
            "RETRANSMITTED_OUT_BYTES": bw.retransmitted_octets,
            "RETRANSMITTED_OUT_PKTS": bw.retransmitted_packets,
            "SRC_TO_DST_AVG_THROUGHPUT": int(8 * fw.octets / rate),
            "DST_TO_SRC_AVG_THROUGHPUT": int(8 * bw.octets / rate),
            "NUM_PKTS_UP_TO_128_BYTES": int(np.sum(bucket == 0)),
            "NUM_PKTS_128_TO_256_BYTES": int(np.sum(bucket == 1)),
            "NUM_PKTS_256_TO_512_BYTES": int(np.sum(bucket == 2)),
            "NUM_PKTS_512_TO_1024_BYTES": int(np.sum(bucket == 3)),
            "NUM_PKTS_1024_TO_1514_BYTES": int(np.sum(bucket == 4)),
            "TCP_WIN_MAX_IN": fw.window,
            "TCP_WIN_MAX_OUT": bw.window,
            "ICMP_TYPE": self.icmp,
            "ICMP_IPV4_TYPE": self.icmp // 256,
            "DNS_QUERY_ID": self.dns[0],
            "DNS_QUERY_TYPE": self.dns[1],
            "DNS_TTL_ANSWER": self.dns[2],
            "FTP_COMMAND_RET_CODE": self.ftp_code,
        }


def _packets(path: Path) -> Iterator[tuple[float, object]]:
    """(timestamp, dpkt IPv4 packet) for every IPv4 packet of a pcap or pcapng file."""
    import dpkt

    with path.open("rb") as handle:
        try:
            reader = dpkt.pcap.UniversalReader(handle)
        except (ValueError, dpkt.dpkt.NeedData) as error:
            raise ConfigError(f"{path}: not a pcap or pcapng capture ({error})") from None
        link = reader.datalink()
        for time, raw in reader:
            if link == dpkt.pcap.DLT_EN10MB:
                frame = dpkt.ethernet.Ethernet(raw).data
            elif link == dpkt.pcap.DLT_LINUX_SLL:
                frame = dpkt.sll.SLL(raw).data
            elif link in (dpkt.pcap.DLT_RAW, 101):
                frame = dpkt.ip.IP(raw)
            else:
                raise ConfigError(
                    f"{path}: link type {link} not supported; use Ethernet, Linux cooked or raw IP"
                )
            if isinstance(frame, dpkt.ip.IP):
                yield float(time), frame


def _update(flow: _Flow, ip: object, time: float, forward: bool) -> None:
    """Add one IPv4 packet to ``flow``."""
    import dpkt

    assert isinstance(ip, dpkt.ip.IP)
    side = flow.forward if forward else flow.backward
    side.add(time, ip.len)
    flow.last = time
    flow.ttl.append(ip.ttl)
    flow.lengths.append(ip.len)
    segment = ip.data
    if isinstance(segment, dpkt.tcp.TCP):
        side.flags |= segment.flags
        side.window = max(side.window, segment.win)
        payload = ip.len - 4 * ip.hl - 4 * segment.off  # from the headers: captures may be cut
        if payload > 0:
            end = (segment.seq + payload) & 0xFFFFFFFF
            ahead = None if side.next_sequence is None else (end - side.next_sequence) & 0xFFFFFFFF
            if ahead is not None and (ahead == 0 or ahead & 0x80000000):  # ends at or before
                side.retransmitted_packets += 1
                side.retransmitted_octets += ip.len
            else:
                side.next_sequence = end
            if not forward and flow.destination[1] == 21 and segment.data[:3].isdigit():
                flow.ftp_code = int(segment.data[:3])
        if segment.flags & (_FIN | _RST):
            flow.closed = True
    elif isinstance(segment, dpkt.udp.UDP) and 53 in (segment.sport, segment.dport):
        try:
            message = dpkt.dns.DNS(segment.data)
        except (dpkt.dpkt.UnpackError, IndexError):
            return
        query_type = message.qd[0].type if message.qd else 0
        answer_ttl = message.an[0].ttl if message.an else flow.dns[2]
        flow.dns = (message.id, query_type or flow.dns[1], answer_ttl)
    elif isinstance(segment, dpkt.icmp.ICMP) and forward and side.packets == 1:
        flow.icmp = segment.type * 256 + segment.code


def records_from_packets(
    packets: Iterator[tuple[float, object]],
    idle_timeout: float = 15.0,
    active_timeout: float = 120.0,
) -> list[tuple[float, dict[str, float | str]]]:
    """(flow start time, NF-v2 feature dict) of every flow, in order of flow start."""
    import dpkt

    active: dict[tuple[object, ...], _Flow] = {}
    done: list[_Flow] = []
    for time, ip in packets:
        assert isinstance(ip, dpkt.ip.IP)
        segment = ip.data
        ports = (
            (segment.sport, segment.dport)
            if isinstance(segment, (dpkt.tcp.TCP, dpkt.udp.UDP))
            else (0, 0)
        )
        a = (socket.inet_ntoa(ip.src), ports[0])
        b = (socket.inet_ntoa(ip.dst), ports[1])
        key = (ip.p, *sorted((a, b)))
        flow = active.get(key)
        syn = (
            isinstance(segment, dpkt.tcp.TCP) and segment.flags & _SYN and not segment.flags & 0x10
        )
        if flow is not None and (
            time - flow.last > idle_timeout
            or time - flow.first > active_timeout
            or (flow.closed and syn)
        ):
            done.append(active.pop(key))
            flow = None
        if flow is None:
            flow = active[key] = _Flow(a, b, ip.p, first=time)
        _update(flow, ip, time, forward=(a == flow.source))
    done.extend(active.values())
    done.sort(key=lambda f: f.first)
    return [(f.first, f.record()) for f in done]


def flows_from_pcap(
    path: str | Path,
    label: Callable[[dict[str, float | str], float], str] | None = None,
    benign: str = "Benign",
) -> pd.DataFrame:
    """NF-v2 records (43 features, Label, Attack) of the flows in a capture, in order of flow
    start; ``label(record, start_time)`` names each flow's class (default: all ``benign``).

    Raises:
        ConfigError: the file is missing, is no capture, or holds no IPv4 flow.
    """
    capture = Path(path)
    if not capture.is_file():
        raise ConfigError(f"capture {capture} does not exist; give a pcap or pcapng file")
    flows = records_from_packets(_packets(capture))
    if not flows:
        raise ConfigError(f"{capture}: no IPv4 packets found")
    frame = pd.DataFrame([record for _, record in flows], columns=list(V2_FEATURES))
    names = [benign if label is None else label(record, start) for start, record in flows]
    frame["Label"] = [int(name != benign) for name in names]
    frame["Attack"] = names
    return frame
