"""A tiny capture written with dpkt → NF-v2 records → (in test_tasks) verdicts."""

from __future__ import annotations

import socket
from pathlib import Path

import pandas as pd
import pytest

from flow_core.errors import ConfigError
from flow_nids.data.loader import validate_frame
from flow_nids.data.pcap import flows_from_pcap

CLIENT, SERVER, SCANNER = "10.0.0.2", "10.0.0.1", "10.0.0.66"


def _frame(src: str, dst: str, segment: object, ttl: int = 64) -> bytes:
    import dpkt

    proto = dpkt.ip.IP_PROTO_TCP if isinstance(segment, dpkt.tcp.TCP) else dpkt.ip.IP_PROTO_UDP
    ip = dpkt.ip.IP(
        src=socket.inet_aton(src), dst=socket.inet_aton(dst), p=proto, ttl=ttl, data=segment
    )
    ip.len = len(bytes(ip))
    return bytes(dpkt.ethernet.Ethernet(src=b"\x02" * 6, dst=b"\x04" * 6, data=ip))


def write_capture(path: Path) -> Path:
    """An HTTP exchange (with one retransmission), a DNS query and answer, and a SYN scan of
    five ports from another host."""
    import dpkt

    tcp = dpkt.tcp
    packets = []
    t = 1_700_000_000.0
    syn, ack, psh, fin = tcp.TH_SYN, tcp.TH_ACK, tcp.TH_PUSH, tcp.TH_FIN
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    body = b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 1200
    conversation = [
        (CLIENT, SERVER, tcp.TCP(sport=40000, dport=80, seq=100, flags=syn, win=64240)),
        (
            SERVER,
            CLIENT,
            tcp.TCP(sport=80, dport=40000, seq=500, ack=101, flags=syn | ack, win=65160),
        ),
        (CLIENT, SERVER, tcp.TCP(sport=40000, dport=80, seq=101, ack=501, flags=ack, win=502)),
        (
            CLIENT,
            SERVER,
            tcp.TCP(
                win=501, sport=40000, dport=80, seq=101, ack=501, flags=psh | ack, data=request
            ),
        ),
        (
            CLIENT,
            SERVER,
            tcp.TCP(
                win=501, sport=40000, dport=80, seq=101, ack=501, flags=psh | ack, data=request
            ),
        ),
        (
            SERVER,
            CLIENT,
            tcp.TCP(
                win=501,
                sport=80,
                dport=40000,
                seq=501,
                ack=101 + len(request),
                flags=psh | ack,
                data=body,
            ),
        ),
        (
            CLIENT,
            SERVER,
            tcp.TCP(win=501, sport=40000, dport=80, seq=101 + len(request), flags=fin | ack),
        ),
    ]
    for src, dst, segment in conversation:
        packets.append((t, _frame(src, dst, segment)))
        t += 0.01
    query = dpkt.dns.DNS(id=4242, qd=[dpkt.dns.DNS.Q(name="a.test", type=dpkt.dns.DNS_A)])
    answer = dpkt.dns.DNS(
        id=4242,
        qr=dpkt.dns.DNS_R,
        qd=query.qd,
        an=[
            dpkt.dns.DNS.RR(
                name="a.test", type=dpkt.dns.DNS_A, ttl=300, rdata=socket.inet_aton(SERVER)
            )
        ],
    )
    packets.append(
        (t, _frame(CLIENT, SERVER, dpkt.udp.UDP(sport=5353, dport=53, data=bytes(query))))
    )
    packets.append(
        (t + 0.002, _frame(SERVER, CLIENT, dpkt.udp.UDP(sport=53, dport=5353, data=bytes(answer))))
    )
    for port in (21, 22, 23, 25, 80):
        t += 0.001
        packets.append(
            (
                t,
                _frame(
                    SCANNER,
                    SERVER,
                    tcp.TCP(sport=50000, dport=port, seq=1, flags=syn, win=1024),
                    ttl=48,
                ),
            )
        )
        packets.append(
            (
                t + 0.0001,
                _frame(
                    SERVER,
                    SCANNER,
                    tcp.TCP(win=501, sport=port, dport=50000, flags=tcp.TH_RST | ack),
                ),
            )
        )
    with path.open("wb") as handle:
        writer = dpkt.pcap.Writer(handle)
        for time, frame in packets:
            writer.writepkt(frame, ts=time)
    return path


def test_capture_becomes_nf_v2_records(tmp_path: Path):
    frame = flows_from_pcap(
        write_capture(tmp_path / "tiny.pcap"),
        label=lambda record, start: "PortScan" if record["IPV4_SRC_ADDR"] == SCANNER else "Benign",
    )
    validate_frame(frame, "capture")  # schema-exact: numbers, no NaN, no negative counters
    assert len(frame) == 7  # HTTP, DNS, five scan probes
    http = frame.iloc[0]
    assert (http["IPV4_SRC_ADDR"], http["L4_DST_PORT"], http["PROTOCOL"], http["L7_PROTO"]) == (
        CLIENT,
        80,
        6,
        7,
    )
    assert (http["IN_PKTS"], http["OUT_PKTS"]) == (5, 2)
    assert http["RETRANSMITTED_IN_PKTS"] == 1
    assert http["CLIENT_TCP_FLAGS"] == 0x1B and http["SERVER_TCP_FLAGS"] == 0x1A
    assert http["TCP_WIN_MAX_IN"] == 64240 and http["TCP_WIN_MAX_OUT"] == 65160
    assert http["NUM_PKTS_1024_TO_1514_BYTES"] == 1 and http["NUM_PKTS_UP_TO_128_BYTES"] == 6
    assert http["FLOW_DURATION_MILLISECONDS"] == 60
    dns = frame.iloc[1]
    assert (
        dns["PROTOCOL"],
        dns["L7_PROTO"],
        dns["DNS_QUERY_ID"],
        dns["DNS_QUERY_TYPE"],
        dns["DNS_TTL_ANSWER"],
    ) == (17, 5, 4242, 1, 300)
    scans = frame.iloc[2:]
    assert scans["L4_DST_PORT"].tolist() == [21, 22, 23, 25, 80]
    assert (scans["MIN_TTL"] == 48).all() and (scans["Label"] == 1).all()
    assert set(scans["Attack"]) == {"PortScan"} and frame["Label"].sum() == 5


def test_bad_capture_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="does not exist"):
        flows_from_pcap(tmp_path / "none.pcap")
    (tmp_path / "junk.pcap").write_bytes(b"not a capture at all")
    with pytest.raises(ConfigError, match="not a pcap"):
        flows_from_pcap(tmp_path / "junk.pcap")


def test_a_capture_cut_to_its_headers_gives_the_same_records(tmp_path: Path):
    import struct

    import dpkt

    full = write_capture(tmp_path / "full.pcap")
    cut = tmp_path / "cut.pcap"
    with full.open("rb") as source, cut.open("wb") as target:
        target.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 96, 1))  # snap length 96
        for time, frame in dpkt.pcap.Reader(source):
            kept = frame[:96]
            target.write(
                struct.pack("<IIII", int(time), round(time % 1 * 1e6), len(kept), len(frame))
            )
            target.write(kept)
    whole, headers_only = flows_from_pcap(full), flows_from_pcap(cut)
    columns = [c for c in whole.columns if not c.startswith("DNS_")]  # DNS answers are cut off
    pd.testing.assert_frame_equal(whole[columns], headers_only[columns])
