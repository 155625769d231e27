"""The programs the NF-synth builder runs inside its network namespaces.

Each mode is started by ``build_nf_synth.py`` with ``ip netns exec``; every loop is bounded
in count and in time, and every packet is addressed to the builder's own namespaces
(10.77.0.0/24). Modes:

- ``serve``: the server host: an HTTP server on port 80 (pages, files, a login form) and a
  DNS server on UDP port 53 that answers every A query;
- ``capture IFACE OUT SECONDS``: writes every frame seen on ``IFACE`` to the pcap ``OUT``;
- ``benign SOURCE SECONDS SEED``: web browsing, DNS look-ups and file downloads from SOURCE;
- ``portscan|synflood|slowhttp|bruteforce SOURCE SECONDS SEED``: one attack episode.
"""

from __future__ import annotations

import contextlib
import http.server
import random
import socket
import socketserver
import struct
import sys
import threading
import time

SERVER = "10.77.0.1"
PASSWORD = "correct-horse"
SNAPLEN = 256


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        size = 2_000
        if self.path.startswith("/files/"):
            size = min(int(self.path.rsplit("/", 1)[1] or 0), 4_000_000)
        elif self.path.startswith("/page/"):
            size = min(int(self.path.rsplit("/", 1)[1] or 0), 200_000)
        body = b"x" * size
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = min(int(self.headers.get("Content-Length", 0)), 10_000)
        form = self.rfile.read(length)
        ok = form.endswith(PASSWORD.encode())
        self.send_response(200 if ok else 401)
        body = b"welcome" if ok else b"wrong password"
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients hanging up mid-reply (slow HTTP, timeouts) are part of the traffic


def _dns(seconds: float) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((SERVER, 53))
    sock.settimeout(1.0)
    end = time.time() + seconds
    while time.time() < end:
        try:
            query, peer = sock.recvfrom(512)
        except TimeoutError:
            continue
        if len(query) < 12:
            continue
        header = query[:2] + b"\x81\x80" + query[4:6] + b"\x00\x01\x00\x00\x00\x00"
        answer = b"\xc0\x0c\x00\x01\x00\x01" + struct.pack(">I", random.choice([60, 300, 3600]))
        answer += b"\x00\x04" + socket.inet_aton(SERVER)
        sock.sendto(header + query[12:] + answer, peer)


def serve(seconds: float) -> None:
    threading.Thread(target=_dns, args=(seconds,), daemon=True).start()
    server = _Server((SERVER, 80), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    time.sleep(seconds)
    server.shutdown()


def capture(interface: str, out: str, seconds: float) -> None:
    """A pcap of the first ``SNAPLEN`` bytes of every frame (headers are all the flow
    aggregator reads; the original lengths are kept in the record headers)."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0003))
    sock.bind((interface, 0))
    sock.settimeout(0.5)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 24)
    end = time.time() + seconds
    with open(out, "wb") as handle:
        handle.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, 1))
        while time.time() < end:
            try:
                frame = sock.recv(65_535)
            except TimeoutError:
                continue
            now = time.time()
            kept = frame[:SNAPLEN]
            header = struct.pack("<IIII", int(now), int(now % 1 * 1e6), len(kept), len(frame))
            handle.write(header + kept)


def _get(source: str, path: str) -> None:
    sock = socket.create_connection((SERVER, 80), timeout=5, source_address=(source, 0))
    with sock:
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: server\r\n\r\n".encode())
        while sock.recv(65_536):
            pass


def _dns_query(source: str, rng: random.Random) -> None:
    name = rng.choice(["www", "mail", "api", "cdn"]) + "." + rng.choice(["example", "corp", "lab"])
    question = (
        b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00\x00\x01\x00\x01"
    )
    query = struct.pack(">HHHHHH", rng.randrange(65_536), 0x0100, 1, 0, 0, 0) + question
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((source, 0))
    sock.settimeout(1.0)
    with sock:
        sock.sendto(query, (SERVER, 53))
        with contextlib.suppress(TimeoutError):
            sock.recvfrom(512)


def benign(source: str, seconds: float, seed: int) -> None:
    rng = random.Random(seed)
    end = time.time() + seconds
    for _ in range(100_000):  # bounded in count as well as time
        if time.time() >= end:
            break
        choice = rng.random()
        try:
            if choice < 0.55:
                _dns_query(source, rng)
                _get(source, f"/page/{rng.randint(500, 60_000)}")
            elif choice < 0.9:
                _dns_query(source, rng)
            else:
                _get(source, f"/files/{rng.randint(20_000, 400_000)}")
        except OSError:
            pass
        time.sleep(rng.expovariate(4.0))


def portscan(source: str, seconds: float, seed: int) -> None:
    ports = list(range(1, 1025))
    random.Random(seed).shuffle(ports)
    end = time.time() + seconds
    for port in ports:
        if time.time() >= end:
            break
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((source, 0))
        sock.settimeout(0.2)
        try:
            sock.connect((SERVER, port))
        except OSError:
            pass
        finally:
            sock.close()
        time.sleep(0.01)


def synflood(source: str, seconds: float, seed: int) -> None:
    import dpkt

    rng = random.Random(seed)
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    end = time.time() + seconds
    for _ in range(20_000):
        if time.time() >= end:
            break
        tcp = dpkt.tcp.TCP(
            sport=rng.randint(1024, 65_535),
            dport=80,
            seq=rng.getrandbits(32),
            flags=dpkt.tcp.TH_SYN,
            win=rng.choice([512, 1024, 2048]),
        )
        ip = dpkt.ip.IP(
            src=socket.inet_aton(source),
            dst=socket.inet_aton(SERVER),
            p=dpkt.ip.IP_PROTO_TCP,
            ttl=rng.randint(40, 255),
            data=tcp,
        )
        ip.len = len(bytes(ip))
        raw.sendto(bytes(ip), (SERVER, 0))
        time.sleep(0.01)


def slowhttp(source: str, seconds: float, seed: int) -> None:
    rng = random.Random(seed)
    end = time.time() + seconds
    connections = []
    for _ in range(40):
        try:
            sock = socket.create_connection((SERVER, 80), timeout=5, source_address=(source, 0))
            sock.sendall(b"GET /page/1000 HTTP/1.1\r\nHost: server\r\n")
            connections.append(sock)
        except OSError:
            pass
    for _ in range(1000):
        if time.time() >= end:
            break
        for sock in list(connections):
            try:
                sock.sendall(f"X-a{rng.randint(0, 9999)}: b\r\n".encode())
            except OSError:
                connections.remove(sock)
        time.sleep(rng.uniform(1.0, 3.0))
    for sock in connections:
        sock.close()


def bruteforce(source: str, seconds: float, seed: int) -> None:
    rng = random.Random(seed)
    end = time.time() + seconds
    for attempt in range(2_000):
        if time.time() >= end:
            break
        form = f"user=admin&password=guess{rng.randint(0, 99_999):05d}".encode()
        if attempt == 1_999:
            form = f"user=admin&password={PASSWORD}".encode()
        try:
            sock = socket.create_connection((SERVER, 80), timeout=5, source_address=(source, 0))
            with sock:
                sock.sendall(
                    b"POST /login HTTP/1.0\r\nHost: server\r\nContent-Type: application/"
                    b"x-www-form-urlencoded\r\nContent-Length: "
                    + str(len(form)).encode()
                    + b"\r\n\r\n"
                    + form
                )
                while sock.recv(4096):
                    pass
        except OSError:
            pass
        time.sleep(rng.uniform(0.02, 0.1))


def main(argv: list[str]) -> None:
    mode = argv[0]
    if mode == "serve":
        serve(float(argv[1]))
    elif mode == "capture":
        capture(argv[1], argv[2], float(argv[3]))
    else:
        modes = {
            "benign": benign,
            "portscan": portscan,
            "synflood": synflood,
            "slowhttp": slowhttp,
            "bruteforce": bruteforce,
        }
        modes[mode](argv[1], float(argv[2]), int(argv[3]))


if __name__ == "__main__":
    main(sys.argv[1:])
