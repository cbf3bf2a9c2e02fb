"""Supervising child processes: free loopback ports for them, whether one is alive, and children
that die with the process that started them, even when it is killed with SIGKILL.

Every part that starts a server (the Tiled server, Redis and the RE Managers, the IOCs) uses these,
so that "free" and "alive" mean one thing everywhere.

A campaign starts a Tiled server, a Channel Access repeater and an IOC per station. Killed with
`kill -9`, it has no chance to stop them: left alone they would run on for ever, holding ports and
the catalog. On Linux the kernel can send a child a signal when its parent dies
(`prctl(PR_SET_PDEATHSIG)`); elsewhere `popen_dying_with_parent` is a plain `Popen`.

The kernel's parent-death signal follows the *thread* that forked, not the process: a child
started from a short-lived thread (a writer, a guard restarting a server) would be killed when
that thread ends. So every such child is forked by one thread that lives as long as the process.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tandem.errors import TandemError

#: servers tandem starts listen here unless told otherwise
LOOPBACK = "127.0.0.1"
#: a server told to listen on every interface (for other hosts) binds this; they reach it by host name
ALL_INTERFACES = "0.0.0.0"


class NoFreePortError(TandemError, OSError):
    """No port was free on the host (for both protocols, where both were asked for)."""


def free_port(host: str = LOOPBACK, *, udp_too: bool = False) -> int:
    """A port free on `host` right now; with `udp_too`, free for UDP as well as TCP.

    A Channel Access server needs one number for its UDP search socket and its TCP socket.
    """
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, 0))
            port = int(tcp.getsockname()[1])
            if not udp_too:
                return port
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((host, port))
                except OSError:
                    continue
                return port
    raise NoFreePortError(f"found no port free for both TCP and UDP on {host} after 100 tries")


def terminate(
    process: subprocess.Popen[Any], timeout_s: float = 10.0, *, signal_number: int = signal.SIGTERM
) -> None:
    """Ask a child to stop (`signal_number`), wait up to `timeout_s`, then SIGKILL; always reaps it."""
    if process.poll() is None:
        process.send_signal(signal_number)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()


def port_is_free(host: str, port: int) -> bool:
    """Whether a TCP server could listen on `host`:`port` now (a port someone asked for by number)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # as the servers do (0MQ, uvicorn): a port left in TIME_WAIT by a server just stopped is free,
        # one another server listens on is not
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def command_line(pid: int) -> list[str] | None:
    """The arguments process `pid` was started with; None where /proc cannot say (gone, not Linux)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [word.decode(errors="replace") for word in raw.split(b"\0") if word]


def descendants(pid: int) -> list[int]:
    """The processes under `pid` (children, theirs, ...), from /proc; empty where there is none."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # the command name in parentheses may hold spaces: the fields after it are split
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        found = children.get(todo.pop(), [])
        out += found
        todo += found
    return out


def log_tail(path: Path, n_lines: int = 25) -> str:
    """The last `n_lines` of a child's log, for an error message that says why it died."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-n_lines:])


def pid_alive(pid: int | None) -> bool:
    """Whether process `pid` runs; a zombie (exited, not yet reaped by its parent) counts as gone."""
    if pid is None or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z":
            return False
    return True


def popen_dying_with_parent(args: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen[Any]:
    """`subprocess.Popen(args, **popen_kwargs)`, and the child gets SIGTERM when this process dies."""
    hook = _parent_death_signal()
    if hook is None:
        return subprocess.Popen(args, **popen_kwargs)

    def spawn() -> subprocess.Popen[Any]:
        # the hook only makes one system call between fork and exec (see _parent_death_signal)
        return subprocess.Popen(args, preexec_fn=hook, **popen_kwargs)  # noqa: PLW1509

    return _spawner().submit(spawn).result()


@functools.cache
def _spawner() -> ThreadPoolExecutor:
    """The one thread that forks children which die with their parent: it lives as long as the process."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="child-spawner")


def _parent_death_signal() -> Callable[[], None] | None:
    """A pre-exec hook that makes the kernel SIGTERM the child when its parent dies (Linux only).

    libc is loaded here, in the parent, so the hook does nothing between fork and exec but one
    system call.
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1

    def hook() -> None:
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)

    return hook
