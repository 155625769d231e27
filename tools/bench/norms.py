"""The flow-norms benchmark: ``nox -s bench -- norms`` writes docs/benchmarks/norms.md.

Sections: exactness of AdamP/SGDP against the reference package ``adamp`` 0.3.0 and of our
LayerNorm/RMSNorm against torch; speed of the optimizer step, of whole training steps and of
the norm layers; and the small-scale science (BatchNorm vs LayerNorm vs PowerNorm, AdamP vs
AdamW) through the ``norms.lm`` task. Run directly with

    python tools/bench/norms.py [--quick] [--threads N] [--out PATH] [--only NAMES]

``--quick`` shrinks every size for a smoke test; its page goes to build/bench/ and says so.
``--only`` reruns some sections: the other sections of an existing page at ``--out``, and
their verdicts, are kept as they are (the run table says which sections are from this run).
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

SECTIONS = ("exactness", "speed", "science")
FIXED = ("Run", "Machine", "Verdicts")  # headings written on every run, not sections


def previous_page(path: Path) -> tuple[dict[str, str], list[list[str]], str]:
    """The sections (title → markdown) and verdict rows (section, target, threshold,
    measured, met) of the page at ``path``, and the date of its run; empty if there is none."""
    if not path.exists():
        return {}, [], ""
    parts: dict[str, list[str]] = {}
    title = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            title = line[3:].strip()
            parts[title] = []
        elif title:
            parts[title].append(line)
    sections = {t: "\n".join(body).strip() for t, body in parts.items() if t not in FIXED}
    cells = [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in parts.get("Verdicts", [])
        if line.startswith("| ")
    ]
    verdicts = [row for row in cells[1:] if len(row) == 5]
    dates = [row for row in cells if row[:1] == ["date"]]
    date = next((line for line in parts.get("Run", []) if line.startswith("| date |")), "")
    del dates
    return sections, verdicts, date.strip("| ").removeprefix("date |").strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--only", default="", help=f"subset of: {','.join(SECTIONS)}")
    args = parser.parse_args()
    os.environ.setdefault("MPLBACKEND", "Agg")
    default = ROOT / ("build/bench/norms-quick.md" if args.quick else "docs/benchmarks/norms.md")
    out: Path = args.out or default
    chosen = [s for s in args.only.split(",") if s] or list(SECTIONS)
    if set(chosen) - set(SECTIONS):
        print(f"unknown sections; choose from {', '.join(SECTIONS)}", file=sys.stderr)
        return 2

    import torch

    torch.set_num_threads(args.threads)
    from norms_bench import exactness, science, speed
    from norms_bench.common import Section, load_average, machine_rows, table

    load_start, started = load_average(), time.perf_counter()
    sections: dict[str, Section] = {}
    runners = {
        "exactness": lambda: exactness.run(),
        "speed": lambda: speed.run(args.quick),
        "science": lambda: science.run(args.quick, out.parent / out.stem),
    }
    for name in chosen:
        print(f"[norms bench] {name} ...", flush=True)
        section_started = time.perf_counter()
        try:
            sections[name] = runners[name]()
        except Exception:  # a failed section is reported on the page; the others still run
            sections[name] = Section(
                name,
                "**This section failed:**\n\n```\n" + traceback.format_exc() + "```",
                [(name, "runs", "failed", False)],
            )
        print(
            f"[norms bench] {name} done in {time.perf_counter() - section_started:.0f} s",
            flush=True,
        )
    total = time.perf_counter() - started
    kept, kept_verdicts, kept_date = previous_page(out) if args.only else ({}, [], "")
    bodies = dict(kept)  # the previous page's order, this run's sections replacing theirs
    bodies.update({section.title: section.markdown for section in sections.values()})
    verdicts = [row for row in kept_verdicts if row[0] not in sections] + [
        [name, claim, threshold, measured, "yes" if ok else "**no**"]
        for name, section in sections.items()
        for claim, threshold, measured, ok in section.verdicts
    ]
    verdicts.sort(key=lambda row: SECTIONS.index(row[0]))
    passed = sum(1 for row in verdicts if row[4] == "yes")
    sections_run = ", ".join(sections)
    if kept:
        sections_run += f"; the other sections are kept from the previous page (run {kept_date})"
    command = "nox -s bench -- norms" if not args.quick else "python tools/bench/norms.py --quick"
    lines = [
        "# flow-norms benchmark",
        "",
        "<!-- Generated by tools/bench/norms.py; do not edit by hand: rerun the benchmark. -->",
        "",
    ]
    if args.quick:
        lines += ["**Quick smoke-test run (tiny sizes): not the published benchmark.**", ""]
    lines += [
        "PowerNorm, the LayerNorm family and AdamP/SGDP, measured in one process on the machine"
        " below, side by side with the reference package `adamp` 0.3.0 and torch's own layers"
        " and optimizers. Verdicts are at the end; each threshold is written next to it.",
        "",
        f"**Result: {passed} of {len(verdicts)} targets met.**",
        "",
        "## Run",
        "",
        table(
            ["item", "value"],
            [
                ["command", f"`{command}` (it runs `python tools/bench/norms.py`)"],
                [
                    "date",
                    datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                ],
                ["sections run", sections_run],
                ["total time", f"{total:.0f} s"],
                [
                    "1-minute load average at start / end",
                    f"{load_start:.2f} / {load_average():.2f} (other processes slow the timings)",
                ],
                [
                    "seeds",
                    "0 for the exactness and speed sections; 0 and 1 for the science section",
                ],
                [
                    "data",
                    "pydoc_data help text shipped with Python (real English); the synthetic sort"
                    " task; random tensors with fixed seeds for the timings",
                ],
            ],
        ),
        "",
        "## Machine",
        "",
        table(["item", "value"], [list(r) for r in machine_rows()]),
        "",
    ]
    for title, markdown in bodies.items():
        lines += [f"## {title}", "", markdown, ""]
    lines += [
        "## Verdicts",
        "",
        table(["section", "target", "threshold", "measured", "met"], [list(r) for r in verdicts]),
        "",
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {out} ({passed}/{len(verdicts)} targets met, {total:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
