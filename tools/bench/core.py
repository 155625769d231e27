"""The flow-core benchmark: ``nox -s bench -- core`` writes docs/benchmarks/core.md.

Each section reproduces one claim of the generative toolkit, measured in this one process on
this machine, against the anchor library where there is one (torchcfm, POT, SciPy, torchdiffeq,
zuko, facebookresearch/flow_matching), and states a verdict. Run directly with

    python tools/bench/core.py [--quick] [--threads N] [--seed S] [--out PATH] [--only NAMES]

``--quick`` shrinks every size for a smoke test (its page says so, and is not the published
one). ``--only`` reruns some sections and keeps the others of the page at ``--out`` as they are.
The numbers on the page are the ones this script printed; nothing is typed in by hand.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

SECTIONS = (
    "solvers",
    "reflow",
    "couplings",
    "meanflow",
    "grids",
    "scaling",
    "likelihood",
    "contract",
    "pairing",
    "compile",
)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, default=None, help="page to write (default docs/benchmarks/core.md)"
    )
    parser.add_argument(
        "--only", default="", help=f"comma-separated subset of sections: {','.join(SECTIONS)}"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    # A quick run is a smoke test: its page goes to the ignored build/ folder, not the docs.
    default = (
        ROOT / "build" / "bench" / "core-quick.md"
        if args.quick
        else ROOT / "docs" / "benchmarks" / "core.md"
    )
    out = args.out or default
    figures = out.parent / out.stem
    chosen = [s for s in args.only.split(",") if s] or list(SECTIONS)
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        print(f"unknown sections {unknown}; choose from {', '.join(SECTIONS)}", file=sys.stderr)
        return 2
    os.environ.setdefault("MPLBACKEND", "Agg")

    from core_bench.env import ensure_anchors, load_average

    load_at_start = load_average()

    install_messages = ensure_anchors()

    import torch
    from core_bench import (
        figures as figs,
    )
    from core_bench import (
        sec_compile,
        sec_contract,
        sec_couplings,
        sec_grids,
        sec_likelihood,
        sec_meanflow,
        sec_pairing,
        sec_reflow,
        sec_scaling,
        sec_solvers,
    )
    from core_bench.common import Section, Settings, targets
    from core_bench.page import write_page
    from core_bench.zoo import Zoo

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    settings = Settings.make(args.quick, args.seed, args.threads, figures)
    the_targets = targets()
    zoo = Zoo(settings)
    runners: dict[str, Callable[[], Section]] = {
        "solvers": lambda: sec_solvers.run(settings, zoo, the_targets),
        "reflow": lambda: sec_reflow.run(settings, zoo, the_targets),
        "couplings": lambda: sec_couplings.run(settings, zoo, the_targets),
        "meanflow": lambda: sec_meanflow.run(settings, zoo, the_targets),
        "grids": lambda: sec_grids.run(settings, zoo, the_targets),
        "scaling": lambda: sec_scaling.run(settings, the_targets),
        "likelihood": lambda: sec_likelihood.run(settings, zoo, the_targets),
        "contract": lambda: sec_contract.run(settings),
        "pairing": lambda: sec_pairing.run(settings, the_targets),
        "compile": lambda: sec_compile.run(settings),
    }
    started = time.perf_counter()
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    sections: list[Section] = []
    for name in chosen:
        print(f"[{time.perf_counter() - started:6.0f} s] section {name} ...", flush=True)
        t0 = time.perf_counter()
        try:
            section = runners[name]()
        except Exception as error:  # a broken section is reported, the others still run
            section = Section(f"{name} (failed)")
            section.add("```\n" + traceback.format_exc() + "\n```")
            section.decide(
                f"section {name} ran", False, f"it raised {type(error).__name__}: {error}"
            )
        section.seconds = time.perf_counter() - t0
        sections.append(section)
        for claim in section.claims:
            print(f"    {claim.verdict:>15}: {claim.claim}", flush=True)
    figure_paths = []
    if {"reflow", "couplings"} <= set(chosen):
        figure_paths.append(
            figs.trajectories(settings, zoo, the_targets[0], figures / "trajectories.png")
        )
    total = time.perf_counter() - started
    extra = "".join(f" {a}" for a in (sys.argv[1:] if argv is None else argv))
    command = f"`nox -s bench -- core{extra}` (it runs `python tools/bench/core.py{extra}`)"
    loads = (load_at_start, load_average())
    summary = write_page(
        out,
        sections,
        settings,
        command,
        date,
        total,
        install_messages,
        figure_paths,
        loads,
        merge=bool(args.only),
    )
    print(summary)
    print(f"wrote {out} in {total:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
