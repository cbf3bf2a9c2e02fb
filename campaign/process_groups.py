"""Detached station processes: started in a session of their own with their output in a log, waited
for, and stopped as a whole process group.

A station's processes (Redis, an RE Manager and its worker) outlive the command that
started them and a Ctrl-C in its terminal does not reach them; `tandem station stop`, run
later from any shell, stops each by its process group. Whether one process is alive and
which ports are free is `tandem.child_processes`'s.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from tandem.child_processes import pid_alive
from tandem.errors import TandemError

__all__ = ["ProcessError", "spawn_detached", "stop_process_group", "wait_for"]


class ProcessError(TandemError, RuntimeError):
    """A station process that would not start, answer or stop."""


def wait_for(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.1) -> bool:
    """Whether `predicate` came true within `timeout_s`, asked every `interval_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)


def stop_process_group(pid: int, *, timeout_s: float = 10.0) -> None:
    """SIGTERM the process group led by `pid`, then SIGKILL what is left after `timeout_s`."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        if wait_for(lambda: not _group_alive(pid), timeout_s if sig == signal.SIGTERM else 5.0):
            return
    raise ProcessError(f"process group {pid} would not stop, even on SIGKILL")


def _group_alive(pgid: int) -> bool:
    _reap(pgid)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # only zombies left (children of a dead leader, waiting for init) count as gone
    return any(pid_alive(int(p)) for p in _group_members(pgid))


def _group_members(pgid: int) -> list[str]:
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().split(")")[-1].split()
            if int(fields[2]) == pgid:
                members.append(stat.parent.name)
    return members


def _reap(pid: int) -> None:
    """Collect the exit status of `pid` if it is our child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def spawn_detached(
    argv: list[str], *, log_path: Path, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> int:
    """Start `argv` in its own session (it outlives us), output to `log_path`; return its pid."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
    return process.pid
