"""Build NF-synth: real traffic between network namespaces, captured, as NetFlow v2 records.

Run as root on Linux (it creates network namespaces): ``python tools/nids/build_nf_synth.py``.
It creates four namespaces — a switch (a Linux bridge) and three hosts joined to it by veth
links (MTU 1500, segmentation offloads off where ethtool exists, optional netem delay and
loss on the client and attacker links):

- ``server`` 10.77.0.1: HTTP (pages, file downloads, a login form) and DNS;
- ``clients`` 10.77.0.2-9: benign browsing, DNS look-ups and file transfers, all the time;
- ``attacker`` one address per attack: 10.77.0.66 port scans, .67 SYN floods, .68 slow HTTP,
  .69 brute-force logins, in episodes (the four in turn) between benign-only stretches, and
  a final episode with all four at once, so that the last rows of the file (the test part of
  FlowTransformer's split) hold every attack class.

Every traffic loop is bounded in count and time and addressed only to these namespaces. The
switch port facing the server is captured to a pcap, which :mod:`flow_nids.data.pcap` turns
into NF-v2 records; each flow is labelled by construction from its source address. The
namespaces are removed at the end, also after an error. Writes the gzip CSV shipped in the
package (``flow_nids/data/nf-synth.csv.gz``) and prints the class counts.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AGENTS = Path(__file__).with_name("nf_synth_agents.py")
PREFIX = "nfsynth-"
HOSTS = {
    "server": ["10.77.0.1"],
    "clients": [f"10.77.0.{i}" for i in range(2, 10)],
    "attacker": ["10.77.0.66", "10.77.0.67", "10.77.0.68", "10.77.0.69"],
}
ATTACKS = {
    "10.77.0.66": "PortScan",
    "10.77.0.67": "SYNFlood",
    "10.77.0.68": "SlowHTTP",
    "10.77.0.69": "BruteForce",
}
MODES = {
    "PortScan": "portscan",
    "SYNFlood": "synflood",
    "SlowHTTP": "slowhttp",
    "BruteForce": "bruteforce",
}


def sh(*args: str) -> None:
    subprocess.run(args, check=True)


def netns(name: str, *args: str) -> list[str]:
    return ["ip", "netns", "exec", PREFIX + name, *args]


def create(delay_ms: float, loss: float) -> None:
    """The switch, the three hosts and their veth links."""
    sh("ip", "netns", "add", PREFIX + "switch")
    sh("ip", "-n", PREFIX + "switch", "link", "add", "br0", "type", "bridge")
    sh("ip", "-n", PREFIX + "switch", "link", "set", "br0", "up")
    ethtool = shutil.which("ethtool")
    for host, addresses in HOSTS.items():
        ns, port = PREFIX + host, f"p-{host}"
        sh("ip", "netns", "add", ns)
        sh(
            "ip",
            "link",
            "add",
            port,
            "netns",
            PREFIX + "switch",
            "mtu",
            "1500",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            ns,
            "mtu",
            "1500",
        )
        sh("ip", "-n", PREFIX + "switch", "link", "set", port, "master", "br0", "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        for address in addresses:
            sh("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
        if ethtool:
            for where, device in ((ns, "eth0"), (PREFIX + "switch", port)):
                sh(
                    "ip",
                    "netns",
                    "exec",
                    where,
                    ethtool,
                    "-K",
                    device,
                    "tso",
                    "off",
                    "gso",
                    "off",
                    "gro",
                    "off",
                )
        if host != "server" and (delay_ms or loss):
            netem = subprocess.run(
                netns(
                    host,
                    "tc",
                    "qdisc",
                    "add",
                    "dev",
                    "eth0",
                    "root",
                    "netem",
                    "delay",
                    f"{delay_ms}ms",
                    f"{delay_ms / 4}ms",
                    "loss",
                    f"{loss}%",
                ),
                check=False,
                capture_output=True,
                text=True,
            )
            if netem.returncode:
                print(
                    f"warning: netem unavailable ({netem.stderr.strip()}); the {host} link"
                    " runs without added delay or loss",
                    file=sys.stderr,
                )
    if not ethtool:
        print(
            "warning: ethtool not found; veth offloads stay on (captures may hold frames"
            " larger than the MTU)",
            file=sys.stderr,
        )


def remove() -> None:
    """Delete every namespace this script made (also those of an earlier, failed run)."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for line in listed.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(PREFIX):
            subprocess.run(["ip", "netns", "del", name], check=False)


def run_traffic(
    pcap: Path,
    benign_seconds: float,
    episodes: int,
    episode_seconds: float,
    gap_seconds: float,
    seed: int,
) -> list[tuple[float, float, str]]:
    """Capture while benign clients run and attack episodes follow each other."""
    py = sys.executable
    total = gap_seconds + (episodes + 1) * (episode_seconds + gap_seconds) + benign_seconds
    processes = [
        subprocess.Popen(
            netns("switch", py, str(AGENTS), "capture", "p-server", str(pcap), str(total + 8))
        ),
        subprocess.Popen(netns("server", py, str(AGENTS), "serve", str(total + 6))),
    ]
    time.sleep(2)
    for i, address in enumerate(HOSTS["clients"]):
        processes.append(
            subprocess.Popen(
                netns(
                    "clients", py, str(AGENTS), "benign", address, str(total), str(seed * 100 + i)
                )
            )
        )
    kinds = list(MODES)
    schedule = []
    time.sleep(gap_seconds)
    for episode in range(episodes):
        kind = kinds[episode % len(kinds)]
        address = next(a for a, k in ATTACKS.items() if k == kind)
        start = time.time()
        print(f"episode {episode + 1}/{episodes}: {kind} from {address}", flush=True)
        subprocess.run(
            netns(
                "attacker",
                py,
                str(AGENTS),
                MODES[kind],
                address,
                str(episode_seconds),
                str(seed * 1000 + episode),
            ),
            timeout=episode_seconds + 30,
            check=False,
        )
        schedule.append((start, time.time(), kind))
        time.sleep(gap_seconds)
    start = time.time()  # the final episode: all four attacks at once, then benign traffic
    print(f"episode {episodes + 1}/{episodes + 1}: all attacks together", flush=True)
    together = [
        subprocess.Popen(
            netns(
                "attacker",
                py,
                str(AGENTS),
                MODES[kind],
                address,
                str(episode_seconds),
                str(seed * 1000 + episodes + index),
            )
        )
        for index, (address, kind) in enumerate(ATTACKS.items())
    ]
    for process in together:
        process.wait(timeout=episode_seconds + 30)
    schedule.append((start, time.time(), "all"))
    time.sleep(benign_seconds)
    for process in processes:
        process.wait(timeout=60)
    return schedule


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=ROOT / "packages/flow-nids/src/flow_nids/data/nf-synth.csv.gz"
    )
    parser.add_argument("--pcap", type=Path, default=None, help="keep the capture here")
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--episode-seconds", type=float, default=25.0)
    parser.add_argument("--gap-seconds", type=float, default=15.0)
    parser.add_argument("--benign-seconds", type=float, default=30.0)
    parser.add_argument("--delay-ms", type=float, default=2.0)
    parser.add_argument("--loss", type=float, default=0.1, help="netem loss in percent")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "packages/flow-nids/src"))
    from flow_nids.data.loader import validate_frame
    from flow_nids.data.pcap import flows_from_pcap

    remove()
    with tempfile.TemporaryDirectory() as scratch:
        pcap = args.pcap or Path(scratch) / "nf-synth.pcap"
        try:
            create(args.delay_ms, args.loss)
            run_traffic(
                pcap,
                args.benign_seconds,
                args.episodes,
                args.episode_seconds,
                args.gap_seconds,
                args.seed,
            )
        finally:
            remove()
        frame = flows_from_pcap(
            pcap, label=lambda record, start: ATTACKS.get(str(record["IPV4_SRC_ADDR"]), "Benign")
        )
    validate_frame(frame, "NF-synth")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out, index=False, compression={"method": "gzip", "mtime": 0})
    print(frame["Attack"].value_counts().to_string())
    print(f"{len(frame)} flows -> {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
