"""The flow-physics benchmark: ``nox -s bench -- physics`` writes docs/benchmarks/physics.md.

The page is made of sections, one module each under ``physics_bench/`` with a
``section(args) -> str`` returning markdown; ``SECTIONS`` lists them in page order (a package
part adds its module there in one line).

    python tools/bench/physics.py [--quick] [--only pta,turbulence] [--out PATH]

The turbulence part writes its own page, docs/benchmarks/physics-turbulence.md
(``tools/bench/physics_turbulence.py``, whose options ``--seeds`` and ``--steps`` follow
``--``). ``--quick`` is a smoke test (its page goes to build/bench/ and says so). Every number
on the page is the one this run measured.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("OMP_NUM_THREADS", "1")

SECTIONS = ["physics_bench.sec_pta", "physics_bench.sec_enterprise"]


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--only",
        default="pta,turbulence",
        help="comma list of parts: pta (physics.md), turbulence (physics-turbulence.md)",
    )
    parser.add_argument("rest", nargs="*", help="options of physics_turbulence.py, after --")
    return parser.parse_args(argv)


def _machine() -> str:
    import numpy
    import torch

    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        f"{platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} logical"
        f" CPUs (shared with other jobs), torch {torch.__version__} with"
        f" {torch.get_num_threads()} thread(s), numpy {numpy.__version__}; run"
        f" {now:%Y-%m-%d %H:%M} UTC"
    )


def main(argv: list[str]) -> None:
    args = _parse(argv)
    parts = {part.strip() for part in args.only.split(",")}
    unknown = parts - {"pta", "turbulence"}
    if unknown:
        raise SystemExit(f"--only: unknown parts {sorted(unknown)}; choose from pta, turbulence")
    if "turbulence" in parts:
        import physics_turbulence

        physics_turbulence.main((["--quick"] if args.quick else []) + args.rest)
    if "pta" not in parts:
        return
    import torch

    torch.set_num_threads(1)
    default = ROOT / ("build/bench/physics.md" if args.quick else "docs/benchmarks/physics.md")
    out = args.out or default
    out.parent.mkdir(parents=True, exist_ok=True)
    args.figures = out.parent / "figures" / "physics"
    args.figures.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    parts = [importlib.import_module(name).section(args) for name in SECTIONS]
    command = "nox -s bench -- physics" + (" --quick" if args.quick else "")
    header = (
        "# flow-physics benchmark\n\n"
        + ("**Quick smoke run: not the benchmark.**\n\n" if args.quick else "")
        + f"Command: `{command}` (`python tools/bench/physics.py`). Machine: {_machine()}."
        f" Whole run: {time.perf_counter() - started:.0f} s.\n"
    )
    out.write_text(header + "\n" + "\n".join(parts), encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
