"""`tandem data stop`: stop the embedded Tiled server of a folder from another terminal.

The server's state file (``server.json``) names the server process and the process that
started it (its owner). Which one is signalled matters: a `tandem data serve` stops its server and
exits cleanly when asked (SIGTERM), whereas killing the server under it would make it report a
crash; a server whose owner is gone (a killed `tandem data serve`) is stopped itself; and the server
of a running campaign, session or station is left alone, since stopping it would break that
process's work: the user is told to stop that process instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path

from tandem.child_processes import command_line, pid_alive
from tandem.tiled_directory import STATE_FILE, find_running_server
from tandem.tiled_endpoint import TiledServerError


def served_directory(directory: Path) -> Path:
    """The folder a server serves: `directory` itself, or a campaign data folder's ``tiled/``."""
    if not (directory / STATE_FILE).exists() and (directory / "tiled" / STATE_FILE).exists():
        return directory / "tiled"
    return directory


def stop_served_directory(directory: Path, *, timeout_s: float = 30.0) -> str:
    """Stop the server of `directory`; what was done, in a sentence. `TiledServerError` if refused."""
    served = served_directory(Path(directory))
    endpoint = find_running_server(served)
    if endpoint is None:
        return f"no Tiled server is running on {served}"
    state = json.loads((served / STATE_FILE).read_text())
    server_pid = int(state["pid"])
    owner_pid = state.get("owner_pid")
    if isinstance(owner_pid, int) and owner_pid != os.getpid() and pid_alive(owner_pid):
        command = command_line(owner_pid) or []
        if "serve" not in command:
            raise TiledServerError(
                f"the Tiled server on {served} ({endpoint.url}) is the data store of a running process "
                f"(pid {owner_pid}: {' '.join(command) or 'unknown'}); stop that process, and its "
                "server stops with it"
            )
        target, who = owner_pid, f"`tandem data serve` (pid {owner_pid})"
    else:
        target, who = server_pid, f"the Tiled server (pid {server_pid}), whose owner is gone"
    os.kill(target, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while pid_alive(server_pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(server_pid, signal.SIGKILL)
            break
        time.sleep(0.1)
    with contextlib.suppress(FileNotFoundError):
        (served / STATE_FILE).unlink()  # its owner removes it; an orphan's is removed here
    return f"stopped {who} serving {served} at {endpoint.url}"


__all__ = ["served_directory", "stop_served_directory"]
