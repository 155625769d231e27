"""The restoration and autoregressive sections of the flow-images benchmark.

``python tools/bench/images.py --only restore,rescale,ar`` (any subset) runs them instead of
the digits methods: ``restore`` (PMRF) and ``rescale`` (invertible rescaling) write
docs/benchmarks/images-restoration.md, ``ar`` (ARFlow and FlowAR against flat flow
matching) docs/benchmarks/images-ar.md. Every number comes from ``flow run`` of the tasks,
read back from each run's ``metrics.json``.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path
from types import ModuleType

from core_bench.common import table
from core_bench.env import machine_rows

from images_bench import sec_ar, sec_rescale, sec_restore
from images_bench.runs import run_jobs

__all__ = ["PAGES", "SECTIONS", "run_sections"]

SECTIONS: dict[str, ModuleType] = {"restore": sec_restore, "rescale": sec_rescale, "ar": sec_ar}
PAGES = {
    "restore": ("images-restoration", "flow-images benchmark: restoration and rescaling"),
    "rescale": ("images-restoration", "flow-images benchmark: restoration and rescaling"),
    "ar": ("images-ar", "flow-images benchmark: autoregressive flows"),
}


def run_sections(names: list[str], args: argparse.Namespace, root: Path) -> int:
    """Run the chosen sections and write their page(s); returns the exit status."""
    started = time.perf_counter()
    runs = root / "build" / "bench" / ("images-extra-quick" if args.quick else "images-extra")
    jobs = [job for name in names for job in SECTIONS[name].jobs(args.quick)]
    print(f"running {len(jobs)} runs, {args.jobs} at a time, on {args.device}", flush=True)
    render = getattr(args, "render", False)
    results = run_jobs(
        jobs, runs, args.seed, args.threads, args.device, args.jobs, args.reuse, render
    )
    folder = root / ("build/bench" if args.quick else "docs/benchmarks")
    for page in dict.fromkeys(PAGES[name][0] for name in names):
        chosen = [name for name in names if PAGES[name][0] == page]
        bodies, verdicts = [], []
        for name in chosen:
            body, found = SECTIONS[name].section(results, runs, folder / page, args.quick)
            bodies.append(body)
            verdicts += found
        missing = [
            job.label
            for name in chosen
            for job in SECTIONS[name].jobs(args.quick)
            if "failed" in results.get(job.label, {"failed": 1.0})
        ]
        if missing:
            bodies.append(
                "Not completed in this run (failed, or stopped because the shared CPU could not"
                f" finish them in time; see build/bench/ for their logs): {', '.join(missing)}."
                " Their claims have no verdict above."
            )
        text = _page(PAGES[chosen[0]][1], args, bodies, verdicts, time.perf_counter() - started)
        out = folder / f"{page}.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        print(f"wrote {out}")
    return 1 if any("failed" in r for r in results.values()) else 0


def _page(
    title: str,
    args: argparse.Namespace,
    bodies: list[str],
    verdicts: list[dict[str, str]],
    seconds: float,
) -> str:
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = "python tools/bench/images.py " + " ".join(sys.argv[1:])
    header = [
        f"# {title}",
        "",
        f"Written by `{command.strip()}` on {when}, in {seconds / 60:.1f} minutes; runs"
        f" {args.jobs} at a time, {args.threads} torch thread(s) each, on `{args.device}`,"
        f" seed {args.seed}. The CPU was shared with other jobs: wall-clock numbers are"
        " indicative only.",
        "",
    ]
    if args.quick:
        header += ["**Quick smoke-test run: tiny training, not the published numbers.**", ""]
    if getattr(args, "render", False):
        header += [
            "Rendered (`--render`) from the runs that finished under build/bench/; their"
            " training times are in the runs' logs, not in the minutes above.",
            "",
        ]
    header += ["## Verdicts", "", table(verdicts), ""]
    header += ["## Machine", "", table(machine_rows(args.threads)), ""]
    return "\n".join([*header, *bodies]) + "\n"
