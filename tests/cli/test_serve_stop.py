"""`tandem data stop` stops a `tandem data serve` or a server left behind, never one a campaign uses."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from campaign_processes import stop
from typer.testing import CliRunner

from tandem.cli import app
from tandem.tiled_directory import find_running_server

#: starts a server on argv[1] as its owner, says so, and waits (argv[2:] only label the process)
OWNER = (
    "import signal, sys, time\n"
    "from tandem.tiled_server import EmbeddedTiledServer\n"
    "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\n"
    "server = EmbeddedTiledServer(sys.argv[1])\n"
    "server.start()\n"
    "try:\n"
    "    time.sleep(600)\n"
    "finally:\n"
    "    server.stop()\n"
)
#: servers a test saw start, stopped at its end whatever happened (a killed owner leaves its server)
_SERVERS: list[int] = []


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for pid in _SERVERS:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _SERVERS.clear()
    for process in started:
        stop(process)


def _wait_for_server(directory: Path, process: subprocess.Popen[str]) -> int:
    """The pid of the server on `directory`, once it answers."""
    deadline = time.monotonic() + 120
    while find_running_server(directory) is None:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.2)
    pid = int(json.loads((directory / "server.json").read_text())["pid"])
    _SERVERS.append(pid)
    return pid


def _gone(pid: int) -> bool:
    from tandem.child_processes import pid_alive

    deadline = time.monotonic() + 30
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _stop(directory: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["data", "stop", "--directory", str(directory)], env={"COLUMNS": "300"})
    return result.exit_code, " ".join(result.output.split())


@pytest.mark.slow
def test_stop_asks_tandem_serve_to_stop(tmp_path: Path, processes: list[subprocess.Popen[str]]) -> None:
    directory = tmp_path / "store"
    serve = subprocess.Popen(
        [sys.executable, "-P", "-m", "tandem.cli", "data", "serve", "--directory", str(directory)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    processes.append(serve)
    server_pid = _wait_for_server(directory, serve)

    code, out = _stop(directory)

    assert code == 0, out
    assert "`tandem data serve`" in out
    assert serve.wait(timeout=60) == 0  # it stopped as on Ctrl-C, not as on a crash
    assert _gone(server_pid)
    assert find_running_server(directory) is None
    assert _stop(directory) == (0, f"no Tiled server is running on {directory}")


@pytest.mark.slow
def test_a_server_left_behind_is_stopped_itself(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    directory = tmp_path / "store"
    owner = subprocess.Popen(
        [sys.executable, "-P", "-c", OWNER, str(directory)], stdout=subprocess.PIPE, text=True
    )
    processes.append(owner)
    server_pid = _wait_for_server(directory, owner)
    owner.kill()  # the server outlives its owner (no die_with_parent)
    owner.wait(timeout=30)
    assert find_running_server(directory) is not None

    code, out = _stop(directory)

    assert code == 0, out
    assert "whose owner is gone" in out
    assert _gone(server_pid)


@pytest.mark.slow
def test_the_server_of_a_running_campaign_is_refused(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    data = tmp_path / "data"
    owner = subprocess.Popen(
        [sys.executable, "-P", "-c", OWNER, str(data / "tiled"), "campaign"],
        stdout=subprocess.PIPE,
        text=True,
    )
    processes.append(owner)
    server_pid = _wait_for_server(data / "tiled", owner)

    code, out = _stop(data)  # a campaign's data folder: its tiled/ is what is served

    assert code == 1, out
    assert f"pid {owner.pid}" in out
    assert "stop that process" in out
    assert owner.poll() is None
    os.kill(server_pid, 0)  # still there


def test_serve_refuses_a_listen_address_that_is_not_an_ip_before_anything_starts(tmp_path: Path) -> None:
    command = ["data", "serve", "-d", str(tmp_path / "store"), "--listen", "store.site"]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 1
    assert "--listen takes an IP address" in result.output
    assert not (tmp_path / "store").exists()
