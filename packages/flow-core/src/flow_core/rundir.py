"""Run directories as a small state machine owned by core.

A run directory (``runs/<task>/<timestamp>/`` or ``--out DIR``) is

* **created atomically**: a fresh directory is made with ``mkdir`` (never reused), so two
  runs started in the same second get two directories;
* **locked** while a process trains in it: ``.lock`` holds the owner's pid and host, and is
  created with an atomic hard link so exactly one process wins. A lock whose owner is a dead
  process on this host is stale: it is taken over with a warning;
* **stateful**: ``status.json`` holds ``state``, one of :data:`STATES`. A run starts
  ``running`` and ends ``finished``, ``failed`` (with the cause) or ``interrupted`` (Ctrl-C or
  SIGTERM). Resuming a failed or interrupted run starts a new attempt (``running`` again); a
  ``finished`` run stays ``finished`` whatever a later ``--resume`` of it does;
* **clean**: a run that fails before it wrote a checkpoint is removed when this invocation
  created its directory (a run directory that existed is put back as it was), so no ghost run
  is left for ``--resume`` to pick; temporary files of interrupted saves (``.step-*.tmp``)
  are removed when a process takes the lock and when it lets go.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Any

from flow_core.checkpoint import latest_checkpoint, load_checkpoint, newest_checkpoint
from flow_core.errors import CheckpointError, ConfigError, UsageError

__all__ = [
    "CONFIG",
    "LOCK",
    "STATES",
    "STATUS",
    "RunDirectory",
    "RunWarning",
    "check_checkpoints",
    "check_log",
    "lock_owner",
    "newest_checkpoint_or_none",
    "open_run",
    "prepare_run_dir",
    "read_json",
    "read_status",
    "resumable",
    "sigterm_interrupts",
    "timestamp",
    "write_json",
    "write_text",
]

CONFIG = "config.json"
STATUS = "status.json"
LOCK = ".lock"
STATES = ("running", "finished", "failed", "interrupted")
"""Every value ``status.json``'s ``state`` takes."""

_OWN_FILES = (CONFIG, STATUS, LOCK)
_TEMPORARY = re.compile(r"^\..+\.tmp$")


class RunWarning(UserWarning):
    """Something about a run directory was repaired (a stale lock taken over)."""


def timestamp() -> str:
    """The current UTC time as ``YYYYmmdd-HHMMSS`` (run names, status times)."""
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a temporary sibling, then a rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` atomically."""
    write_text(path, json.dumps(data, indent=2) + "\n")


def read_json(path: Path, what: str) -> Any:
    """Parse the JSON file ``path``; raise :class:`ConfigError` naming it when it is not JSON.

    ``what`` says what the file should be ("the run's resolved config").
    """
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"cannot read {what} {path}: {error.strerror or error}") from None
    try:
        return json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(
            f"{path} is not valid JSON ({error}); it should hold {what}: fix or remove it"
        ) from None


def read_status(run_dir: Path) -> dict[str, Any] | None:
    """The run's ``status.json`` (``None`` when absent); :class:`ConfigError` when garbled."""
    path = run_dir / STATUS
    if not path.exists():
        return None
    status = read_json(path, "the run's status")
    if not isinstance(status, dict) or status.get("state") not in STATES:
        raise ConfigError(
            f"{path} holds no valid state; expected an object whose 'state' is one of:"
            f" {', '.join(STATES)}"
        )
    return status


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def lock_owner(run_dir: Path) -> dict[str, Any] | None:
    """The live owner ``{"pid", "host"}`` of the run's lock, or ``None`` when nobody holds it.

    A lock held on another host is taken as live (its pid cannot be checked from here); an
    unreadable lock file counts as held by nobody.
    """
    try:
        owner = json.loads((run_dir / LOCK).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(owner, dict) or not isinstance(owner.get("pid"), int):
        return None
    if owner.get("host") == socket.gethostname() and not _pid_alive(owner["pid"]):
        return None
    return owner


def _remove_temporaries(run_dir: Path) -> None:
    """Delete the temporary files and folders that interrupted atomic writes left behind."""
    for root, dirs, files in os.walk(run_dir):
        for name in [*dirs, *files]:
            if _TEMPORARY.match(name):
                path = Path(root) / name
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        dirs[:] = [d for d in dirs if not _TEMPORARY.match(d)]


def _unwritable(where: Path, error: OSError) -> UsageError:
    reason = error.strerror or type(error).__name__
    return UsageError(
        f"--out {where}: cannot write there ({reason}); choose a directory you can write to"
    )


def _make_directory(path: Path) -> None:
    """Create ``path`` and its parents (``FileExistsError`` when it exists);
    :class:`UsageError` when a file is in the way or nothing can be written."""
    for parent in [path, *path.parents]:
        if parent.exists() and not parent.is_dir():
            raise UsageError(
                f"--out {path}: {parent} is a file, not a directory; choose a directory"
            )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir()
    except FileExistsError:
        raise
    except OSError as error:
        raise _unwritable(path, error) from None


@dataclass
class RunDirectory:
    """An opened run directory: its path, who made it, and the lock this process holds."""

    path: Path
    created: bool
    previous: dict[str, Any] | None = None
    _locked: bool = field(default=False, repr=False)

    @property
    def was_finished(self) -> bool:
        """Whether the run was already ``finished`` before this invocation (a re-run)."""
        return self.previous is not None and self.previous.get("state") == "finished"

    def lock(self) -> None:
        """Take the run's lock, taking over a stale one; :class:`UsageError` when it is held."""
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": timestamp()}
        tmp = self.path / f".lock.{os.getpid()}.tmp"
        try:
            tmp.write_text(json.dumps(me), encoding="utf-8")
        except OSError as error:
            raise _unwritable(self.path, error) from None
        try:
            for _ in range(3):
                try:
                    os.link(tmp, self.path / LOCK)
                except FileExistsError:
                    self._take_over_stale()
                    continue
                self._locked = True
                break
            else:
                raise UsageError(f"{self.path} is locked by another process; try again")
        finally:
            tmp.unlink(missing_ok=True)
        _remove_temporaries(self.path)

    def _take_over_stale(self) -> None:
        owner = lock_owner(self.path)
        if owner is not None:
            raise UsageError(
                f"{self.path} is in use: process {owner['pid']} on {owner.get('host')} is"
                f" training in it (lock {self.path / LOCK}); wait for it to end or stop it"
            )
        warnings.warn(
            f"taking over the stale lock of {self.path} (its process is gone)",
            RunWarning,
            stacklevel=4,
        )
        (self.path / LOCK).unlink(missing_ok=True)

    def unlock(self) -> None:
        """Let go of the lock (and remove the temporaries this process may have left)."""
        if self._locked:
            _remove_temporaries(self.path)
            (self.path / LOCK).unlink(missing_ok=True)
            self._locked = False

    def start(self, record: dict[str, Any]) -> None:
        """Write the resolved config and mark the run ``running`` (a finished run stays so)."""
        write_json(self.path / CONFIG, record)
        if not self.was_finished:
            write_json(self.path / STATUS, {"state": "running", "started": timestamp()})

    def finish(self) -> None:
        """Mark the run ``finished`` and let go of it."""
        status = {"state": "finished", "ended": timestamp()}
        started = _started(self.path)
        if started:
            status["started"] = started
        write_json(self.path / STATUS, status)
        self.unlock()

    def abandon(self, error: BaseException) -> None:
        """End the run after ``error``: remove it when nothing of it is worth keeping, else
        mark it ``failed`` or ``interrupted``. A run finished before stays as it was."""
        try:
            if self.was_finished:
                return
            if newest_checkpoint_or_none(self.path) is None and self._holds_nothing_else():
                self._remove()
                return
            state = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
            status: dict[str, Any] = {"state": state, "ended": timestamp()}
            started = _started(self.path)
            if started:
                status["started"] = started
            if state == "failed":
                status["error"] = f"{type(error).__name__}: {error}".strip().rstrip(":")
            write_json(self.path / STATUS, status)
        finally:
            self.unlock()

    def _holds_nothing_else(self) -> bool:
        """Whether the directory holds only what this invocation wrote before training."""
        if self.previous is not None:
            return False
        for path in self.path.rglob("*"):
            if (path.is_dir() and not path.is_symlink()) or _TEMPORARY.match(path.name):
                continue
            name = path.relative_to(self.path).as_posix()
            empty_log = name == "metrics.jsonl" and path.stat().st_size == 0
            if name not in _OWN_FILES and not empty_log:
                return False
        return True

    def _remove(self) -> None:
        self._locked = False
        if self.created:
            shutil.rmtree(self.path, ignore_errors=True)
            return
        for path in sorted(self.path.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if path.is_dir() and not path.is_symlink():
                path.rmdir()
            else:
                path.unlink(missing_ok=True)


def _started(run_dir: Path) -> str | None:
    try:
        status = json.loads((run_dir / STATUS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    started = status.get("started") if isinstance(status, dict) else None
    return started if isinstance(started, str) else None


def newest_checkpoint_or_none(run_dir: Path) -> Path | None:
    """The newest complete checkpoint anywhere under ``run_dir/checkpoints`` (any stage)."""
    found: list[Path] = []
    for directory in _checkpoint_dirs(run_dir):
        with contextlib.suppress(CheckpointError, OSError):
            step = newest_checkpoint(directory)
            if step is not None:
                found.append(step)
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def _checkpoint_dirs(run_dir: Path) -> list[Path]:
    root = run_dir / "checkpoints"
    if not root.is_dir() or root.is_symlink():
        return []
    return [root, *sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink())]


def check_checkpoints(run_dir: Path) -> None:
    """Before a resume writes anything: every checkpoint it would load resolves inside the
    run and reads safely (:class:`CheckpointError` otherwise)."""
    for directory in _checkpoint_dirs(run_dir):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the training loop warns when it falls back
            path = latest_checkpoint(directory)
        if path is not None:
            load_checkpoint(path)


def check_log(run_dir: Path) -> None:
    """Every line of the run's ``metrics.jsonl`` is a JSON object (:class:`ConfigError`)."""
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return
    try:
        lines = path.read_bytes().decode("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read the step log {path}: {error}") from None
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line) if line.strip() else {}
        except json.JSONDecodeError as error:
            raise ConfigError(
                f"{path} line {number} is not JSON ({error}); it should hold one logged step"
                " per line: fix or remove the line"
            ) from None
        if not isinstance(record, dict):
            raise ConfigError(f"{path} line {number} is not a JSON object")


def resumable(run_dir: Path) -> bool:
    """Whether ``--resume`` may pick ``run_dir``: a readable config, not finished, nobody
    training in it, and a checkpoint to continue from."""
    try:
        status = read_status(run_dir)
        read_json(run_dir / CONFIG, "the run's resolved config")
    except ConfigError:
        return False
    if status is None or status["state"] == "finished" or lock_owner(run_dir) is not None:
        return False
    return newest_checkpoint_or_none(run_dir) is not None


def prepare_run_dir(task_name: str, out: Path | None, resume: bool, runs_root: Path) -> Path:
    """Choose the run directory without creating it: ``out``, or a new
    ``runs/<task>/<timestamp>``, or on ``resume`` the given or newest resumable run."""
    if resume:
        if out is None:
            task_root = runs_root / task_name
            candidates = sorted(
                (p for p in task_root.glob("*") if p.is_dir() and resumable(p)),
                key=lambda p: p.name,
            )
            if not candidates:
                raise UsageError(
                    f"--resume: no resumable run of {task_name!r} under {task_root} (one that"
                    " is not finished, not in use, and has a checkpoint); pass --out DIR to"
                    " name the run to resume"
                )
            out = candidates[-1]
        if out.exists() and not out.is_dir():
            raise UsageError(f"--resume: {out} is a file, not a run directory")
        if not (out / CONFIG).exists():
            raise UsageError(f"--resume: {out} is not a run directory (it has no {CONFIG})")
        return out
    if out is None:
        return runs_root / task_name / timestamp()
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a directory; choose a directory")
    if out.is_dir() and any(out.iterdir()):
        raise UsageError(
            f"--out {out} already exists and is not empty; pass --resume to continue it,"
            " or choose another directory"
        )
    return out


def open_run(task_name: str, out: Path | None, resume: bool, runs_root: Path) -> RunDirectory:
    """Choose, create and lock the run directory; check the files a resume reads.

    Raises:
        UsageError: ``--out`` is a file or cannot be written, the run is in use, or there
            is nothing to resume.
        ConfigError: the resumed run's ``config.json`` or ``status.json`` is garbled.
    """
    path = prepare_run_dir(task_name, out, resume, runs_root)
    if resume:
        previous = read_status(path)
        read_json(path / CONFIG, "the run's resolved config")
        run = RunDirectory(path, created=False, previous=previous or {"state": "running"})
        run.lock()
        try:
            check_log(path)
            check_checkpoints(path)
        except BaseException:
            run.unlock()
            raise
        return run
    if out is None:
        base, n = path, 1
        while True:
            try:
                _make_directory(path)
                break
            except FileExistsError:
                path, n = base.with_name(f"{base.name}-{n}"), n + 1
        created = True
    else:
        try:
            _make_directory(path)
            created = True
        except FileExistsError:
            created = False
    run = RunDirectory(path, created=created)
    run.lock()  # a run in use is left alone: its owner may have made the directory
    if any(p.name != LOCK for p in path.iterdir()):
        run.unlock()
        raise UsageError(
            f"--out {path} filled up while this run started (another run took it); choose"
            " another directory"
        )
    return run


class _Terminated(KeyboardInterrupt):
    """SIGTERM, delivered as an interruption so the run is marked ``interrupted``."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Terminated(f"terminated by signal {signum}")


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`KeyboardInterrupt` (main thread only)."""
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
