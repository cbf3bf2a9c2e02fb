"""`tandem agent stop` finds the daemon by its heartbeat in Tiled and sends it SIGTERM (issue 13, "Also").

The daemon itself is stood in for by a process whose command line reads `... agent run` and that
exits on SIGTERM, as `tandem agent run` does: what is tested here is finding, checking and
signalling it (the daemon's own handling of SIGTERM is tested with the real daemon elsewhere).
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
from tiled.client.container import Container
from typer.testing import CliRunner

from tandem.agents.journal import Journal
from tandem.cli import app
from tandem.tiled_endpoint import API_KEY_ENV, URI_ENV, TiledEndpoint

#: exits with status 7 on SIGTERM; its argv ends with "agent run", as the daemon's does
STAND_IN = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *_: sys.exit(7))\n"
    "print('ready', flush=True)\n"
    "time.sleep(120)\n"
)


def _start(*argv: str) -> subprocess.Popen[str]:
    process = subprocess.Popen([sys.executable, "-c", STAND_IN, *argv], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    return process


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def _stop(endpoint: TiledEndpoint, campaign_id: str) -> tuple[int, str]:
    env = {URI_ENV: endpoint.url, API_KEY_ENV: endpoint.api_key, "COLUMNS": "200"}
    result = CliRunner().invoke(app, ["agent", "stop", "--campaign", campaign_id, "--timeout", "60"], env=env)
    return result.exit_code, " ".join(result.output.split())


def _beat(client: Container, campaign_id: str, pid: int, host: str | None = None) -> None:
    journal = Journal(client, campaign_id, {"id": campaign_id})
    journal.heartbeat({"pid": pid, "host": host or socket.gethostname(), "state": "running"})


def test_stop_signals_the_daemon_of_the_heartbeat_and_waits_for_it(
    tiled_client: Container,
    tiled_endpoint: TiledEndpoint,
    unique_campaign_id: str,
    processes: list[subprocess.Popen[str]],
) -> None:
    daemon = _start("agent", "run", "daemon.yaml")
    processes.append(daemon)
    _beat(tiled_client, unique_campaign_id, daemon.pid)

    code, out = _stop(tiled_endpoint, unique_campaign_id)

    assert code == 0, out
    assert daemon.wait(timeout=30) == 7  # it got SIGTERM, not SIGKILL
    assert f"pid {daemon.pid}" in out
    assert "stopped" in out


def test_a_reused_pid_is_never_signalled(
    tiled_client: Container,
    tiled_endpoint: TiledEndpoint,
    unique_campaign_id: str,
    processes: list[subprocess.Popen[str]],
) -> None:
    other = _start("something", "else")
    processes.append(other)
    _beat(tiled_client, unique_campaign_id, other.pid)

    code, out = _stop(tiled_endpoint, unique_campaign_id)

    assert code == 1, out
    assert "no longer a tandem agent daemon" in out
    assert other.poll() is None


def test_no_running_daemon_or_one_on_another_host(
    tiled_client: Container,
    tiled_endpoint: TiledEndpoint,
    unique_campaign_id: str,
    processes: list[subprocess.Popen[str]],
) -> None:
    gone = _start("agent", "run")
    gone.kill()
    gone.wait(timeout=30)
    _beat(tiled_client, unique_campaign_id, gone.pid)
    code, out = _stop(tiled_endpoint, unique_campaign_id)
    assert code == 0, out
    assert "no agent daemon" in out

    elsewhere = _start("agent", "run")
    processes.append(elsewhere)
    _beat(tiled_client, unique_campaign_id, elsewhere.pid, host="another-host")
    code, out = _stop(tiled_endpoint, unique_campaign_id)
    assert code == 1, out
    assert "runs on another-host" in out
    assert elsewhere.poll() is None
