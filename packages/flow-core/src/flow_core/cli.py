"""The ``flow`` command line: ``plugins``, ``list``, ``info``, ``run``, ``runs``, ``eval`` and
``sample``.

Exit status: 0 on success; 2 on bad usage or configuration (the message names the bad key or
name and what is accepted); 1 on a runtime failure. Messages are one line; ``--debug`` adds
the traceback. Started under ``torchrun``, ``flow run`` trains data-parallel.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import json
import os
import sys
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from flow_core.components import KINDS
from flow_core.config import parse_set, resolve_settings, type_name
from flow_core.errors import FlowError, UsageError
from flow_core.options import ParamInfo, constructor_options, walk_fields
from flow_core.plugins import load_plugins
from flow_core.registry import (
    FIRST_PARTY_DISTRIBUTIONS,
    Registry,
    get_registry,
    normalize_kind,
    using_registry,
)
from flow_core.routing import plan_run

__all__ = ["main"]

FIRST_PARTY_DOCS = "docs/packages/{distribution}.md in the flow repository"


def _project_url(distribution: str) -> str:
    """Where a distribution documents itself: flow's own docs page, else its project URL."""
    if distribution in FIRST_PARTY_DISTRIBUTIONS:
        return FIRST_PARTY_DOCS.format(distribution=distribution)
    try:
        metadata = importlib.metadata.metadata(distribution)
    except importlib.metadata.PackageNotFoundError:
        return ""
    urls = [u.split(",", 1)[-1].strip() for u in metadata.get_all("Project-URL") or []]
    if urls:
        return str(urls[0])
    return str(metadata["Home-page"]) if "Home-page" in metadata else ""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def _build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser = _Parser(
        prog="flow", description="Flow methods for machine learning.", parents=[common]
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("plugins", parents=[common], help="installed plugins and their status")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("list", parents=[common], help="registered components")
    p.add_argument("kind", nargs="?", help=f"one of: {', '.join(KINDS)} (singular or plural)")
    p.add_argument("--json", action="store_true", help="print a JSON list")

    p = sub.add_parser("info", parents=[common], help="one component: summary and config")
    p.add_argument("name")

    # what run, eval and sample share: settings, device, progress bar
    settings = _Parser(add_help=False, parents=[common])
    settings.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a config field or a component option (repeatable)",
    )
    settings.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    settings.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    p = sub.add_parser("run", parents=[settings], help="run a task into a run directory")
    p.add_argument("task")
    p.add_argument("--config", type=Path, help="TOML file of config values")
    p.add_argument("--out", type=Path, help="run directory (default runs/<task>/<timestamp>)")
    p.add_argument("--seed", type=int, default=0, help="seed for every random generator")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out (or the newest run of the task)",
    )

    p = sub.add_parser("runs", parents=[common], help="runs under the runs root and their status")
    p.add_argument("task", nargs="?", help="only the runs of this task")
    p.add_argument("--root", type=Path, default=Path("runs"), help="runs root (default runs/)")
    p.add_argument("--json", action="store_true", help="print a JSON list")

    for command, what in (
        ("eval", "re-evaluate a run's weights into RUN_DIR/evaluations/<time>/"),
        ("sample", "draw samples from a run's weights into RUN_DIR/evaluations/<time>/"),
    ):
        p = sub.add_parser(command, parents=[settings], help=what)
        p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
        p.add_argument("--seed", type=int, help="seed (default: the run's)")
        if command == "sample":
            p.add_argument("--count", type=int, default=64, help="number of samples (64)")
    return parser


def _cmd_plugins(registry: Registry, as_json: bool) -> None:
    rows: list[dict[str, Any]] = [
        {
            "name": p.name,
            "distribution": p.distribution,
            "version": p.version,
            "status": p.status,
            "error": p.error,
            "components": {k: [c.name for c in v] for k, v in p.components.items()},
        }
        for p in registry.plugins
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    for row in rows:
        count = sum(len(v) for v in row["components"].values())
        line = f"{row['name']:<12} {row['distribution']:<18} {row['version']:<10} {row['status']}"
        line += f"  ({count} components)" if row["status"] == "loaded" else f"  {row['error']}"
        print(line.rstrip())


def _cmd_list(registry: Registry, kind: str | None, as_json: bool) -> None:
    entries = registry.entries(kind)
    if as_json:
        print(
            json.dumps(
                [
                    {
                        "kind": e.kind,
                        "name": e.name,
                        "plugin": e.plugin.name,
                        "summary": e.component.summary,
                    }
                    for e in entries
                ],
                indent=2,
            )
        )
        return
    width = max((len(e.name) for e in entries), default=4)
    current = None
    for e in entries:
        if e.kind != current:
            current = e.kind
            print(f"{e.kind}s:")
        print(f"  {e.name:<{width}}  [{e.plugin.name}]  {e.component.summary}")


def _option_line(param: ParamInfo) -> str:
    annotation = (
        type_name(param.annotation) if not isinstance(param.annotation, str) else param.annotation
    )
    default = "required" if param.required else repr(param.default)
    doc = f"  — {param.doc}" if param.doc else ""
    return f"{param.name}: {annotation} = {default}{doc}"


def _print_options(obj: Any, indent: str) -> None:
    options = [p for p in constructor_options(obj).values() if p.name not in ("params", "self")]
    for param in options:
        print(indent + _option_line(param))
    if not options:
        print(indent + "(no options)")


def _print_task_config(registry: Registry, task_cls: Any) -> None:
    config_cls = task_cls.Config
    fields = list(walk_fields(config_cls))
    print("  config (--set key=value):")
    for info in fields:
        if info.path.startswith("train."):
            continue
        note = ""
        if info.kind is not None:
            note = f"  [{info.kind}]"
        elif info.option_of is not None:
            note = f"  [-> {info.option_of[0]}.{info.option_of[1]}]"
        if info.when is not None:
            note += f"  (used when {info.when.text})"
        print(f"    {info.path}: {type_name(info.annotation)} = {info.default!r}{note}")
    training = [f for f in fields if f.path.startswith("train.")]
    if not training:
        print("  training section: none (this task trains nothing)")
    if training:
        print("  training section (--set train.KEY=value; KEY=value where no field above")
        print("  has that name):")
        for info in training:
            print(f"    {info.path}: {type_name(info.annotation)} = {info.default!r}")
    try:
        with using_registry(registry):
            resolution = resolve_settings(config_cls)
            chosen = plan_run(task_cls(), resolution, registry).components
    except FlowError as error:
        print(f"  components: (defaults do not resolve: {error})")
        return
    print("  component options (--set ROLE.OPTION=value, or OPTION=value for every component")
    print("  that takes it); shown for the default choice of each role:")
    for role, (kind, name) in chosen.items():
        print(f"    {role} = {kind} {name!r} (others: flow list {kind}):")
        _print_options(registry.load(kind, name), "      ")


def _cmd_info(registry: Registry, name: str) -> None:
    for entry in registry.find(name):
        print(
            f"{entry.name} ({entry.kind}, plugin {entry.plugin.name!r},"
            f" {entry.plugin.distribution} {entry.plugin.version})"
        )
        print(f"  {entry.component.summary}")
        print(f"  target: {entry.component.target}")
        obj = entry.load()
        doc = (getattr(obj, "__doc__", None) or "").strip().splitlines()
        if doc:
            print(f"  {doc[0]}")
        config_cls: Any = getattr(obj, "Config", None)
        if isinstance(config_cls, type) and dataclasses.is_dataclass(config_cls):
            _print_task_config(registry, obj)
        elif entry.kind != "task":
            print("  options (--set ROLE.OPTION=value in a task that uses it):")
            _print_options(obj, "    ")
        docs = entry.component.docs or _project_url(entry.plugin.distribution)
        if docs:
            print(f"  docs: {docs}")


def _cmd_run(args: argparse.Namespace) -> None:
    from flow_core.runner import execute

    overrides = [parse_set(item) for item in args.sets]
    run_dir, metrics = execute(
        args.task,
        overrides=overrides,
        config_file=args.config,
        out=args.out,
        device=args.device,
        seed=args.seed,
        resume=args.resume,
        show_progress=not args.no_progress,
    )
    from flow_core.gpu import dist_info

    if dist_info().is_main:
        shown = ", ".join(f"{k}={v:.4g}" for k, v in list(metrics.items())[:8])
        print(f"run directory: {run_dir}")
        print(f"metrics: {shown}")


def _cmd_evaluate(args: argparse.Namespace) -> None:
    from flow_core.evaluation import evaluate_run

    out_dir, metrics = evaluate_run(
        args.run_dir,
        mode="sample" if args.command == "sample" else "evaluate",
        overrides=[parse_set(item) for item in args.sets],
        count=getattr(args, "count", 64),
        device=args.device,
        seed=args.seed,
        show_progress=not args.no_progress,
    )
    shown = ", ".join(f"{k}={v:.4g}" for k, v in list(metrics.items())[:8])
    print(f"written to: {out_dir}")
    print(f"metrics: {shown}")


def _cmd_runs(root: Path, task: str | None, as_json: bool) -> None:
    from flow_core.runs import format_runs, list_runs

    rows = list_runs(root, task)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    for line in format_runs(rows):
        print(line)


def _dispatch(args: argparse.Namespace) -> None:
    if args.command == "run":
        _cmd_run(args)
        return
    if args.command in ("eval", "sample"):
        _cmd_evaluate(args)
        return
    if args.command == "runs":
        _cmd_runs(args.root, args.task, args.json)
        return
    if args.command == "plugins":  # shows clashing plugins instead of stopping at the clash
        _cmd_plugins(Registry(load_plugins(report_conflicts=True)), args.json)
        return
    registry = get_registry()
    if args.command == "list":
        _cmd_list(registry, normalize_kind(args.kind) if args.kind else None, args.json)
    elif args.command == "info":
        _cmd_info(registry, args.name)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``flow`` command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    warnings.formatwarning = _one_line_warning
    try:
        args = _build_parser().parse_args(argv)
        _dispatch(args)
    except FlowError as error:
        if debug:
            traceback.print_exc()
        print(f"flow: error: {_one_line(str(error))}", file=sys.stderr)
        return 2 if isinstance(error, UsageError) else 1
    except BrokenPipeError:  # output piped into e.g. `head`, which closed early
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("flow: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if debug:
            traceback.print_exc()
        where = "" if debug else " (rerun with --debug for the traceback)"
        message = f"{type(error).__name__}: {_one_line(str(error))}"
        print(f"flow: error: {message}{where}", file=sys.stderr)
        return 1
    return 0


def _one_line(text: str) -> str:
    """``text`` with its lines joined, so that every message is one line."""
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def _one_line_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    line: str | None = None,
) -> str:
    return f"flow: warning: {_one_line(str(message))}\n"


if __name__ == "__main__":
    sys.exit(main())
