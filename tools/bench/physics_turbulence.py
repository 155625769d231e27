"""Standalone runner of the flow-physics turbulence benchmark: writes
docs/benchmarks/physics-turbulence.md (``nox -s bench -- physics --only turbulence`` calls
it).

    python tools/bench/physics_turbulence.py [--quick] [--seeds N] [--steps S] [--out PATH]

``--quick`` is a smoke test (its page goes to build/bench/ and says so). Every number on the
page is the one this run printed.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("OMP_NUM_THREADS", "1")


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--out", type=Path, default=None)
    return parser.parse_args(argv)


def _machine() -> str:
    import numpy
    import torch

    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        f"{platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} logical CPUs"
        f" (shared with other jobs), torch {torch.__version__} with {torch.get_num_threads()}"
        f" thread(s), numpy {numpy.__version__}; run {now:%Y-%m-%d %H:%M} UTC"
    )


def main(argv: list[str]) -> None:
    import torch
    from physics_bench import sec_turbulence

    torch.set_num_threads(1)
    args = _parse(argv)
    if args.quick:
        args.steps, args.seeds = min(args.steps, 20), 1
    out = args.out or (
        ROOT / "build" / "bench" / "physics-turbulence.md"
        if args.quick
        else ROOT / "docs" / "benchmarks" / "physics-turbulence.md"
    )
    args.figures = out.parent / "physics-turbulence"
    args.work = ROOT / "build" / "bench" / "physics-turbulence-work"
    started = time.perf_counter()
    section, verdicts = sec_turbulence.run(args)
    minutes = (time.perf_counter() - started) / 60
    command = "python tools/bench/physics_turbulence.py" + (" --quick" if args.quick else "")
    command += f" --seeds {args.seeds} --steps {args.steps}"
    header = [
        "# flow-physics benchmark: turbulence",
        "",
        f"Produced by `{command}` in {minutes:.1f} minutes."
        + (" **Quick smoke run: not a result.**" if args.quick else ""),
        f"Machine: {_machine()}.",
        "",
        f"{sum(v.startswith('**met') or v.startswith('**reproduced') for v in verdicts)} of"
        f" {len(verdicts)} claims met or reproduced (on substitute data).",
        "",
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(header) + "\n" + section)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
