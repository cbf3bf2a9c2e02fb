"""`tandem data serve --roles` in a terminal of its own: keys issued from another, stopped, served again."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from campaign_processes import stop
from typer.testing import CliRunner

from tandem.cli import app
from tandem.tiled_directory import API_KEY_FILE, find_running_server
from tandem.tiled_keys import key_identity, read_role_key
from tandem.tiled_roles import TandemRole


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[list[subprocess.Popen[str]]]:
    """`tandem data serve` processes the test starts; stopped (SIGTERM, then SIGKILL) at its end."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        stop(process)


def _serve(directory: Path, *flags: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_TILED_")}
    return subprocess.Popen(
        [sys.executable, "-m", "tandem.cli", "data", "serve", "--directory", str(directory), *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )


def _wait_for_server(process: subprocess.Popen[str]) -> str:
    """What `tandem data serve` printed up to "Press Ctrl-C" (it then handles SIGTERM as Ctrl-C)."""
    assert process.stdout is not None
    printed = []
    for line in process.stdout:
        printed.append(line)
        if line.startswith("Press Ctrl-C"):
            return "".join(printed)
    raise AssertionError(f"`tandem data serve` exited: {''.join(printed)}")


def _stop(directory: Path, process: subprocess.Popen[str]) -> str:
    result = CliRunner().invoke(app, ["data", "stop", "--directory", str(directory)])
    assert result.exit_code == 0, result.output
    rest, _ = process.communicate(timeout=60)
    assert process.returncode == 0, rest
    return rest


def test_serve_with_roles_issue_keys_stop_and_serve_again(
    tmp_path: Path, serve: list[subprocess.Popen[str]]
) -> None:
    directory = tmp_path / "store"
    first = _serve(directory, "--roles")
    serve.append(first)
    output = _wait_for_server(first)
    assert "Served with roles: this is the owner's key" in output
    assert f"cat {directory.absolute()}/keys/ROLE" in output
    issued = CliRunner().invoke(app, ["data", "keys", "issue", "scientist", "--directory", str(directory)])
    assert issued.exit_code == 0, issued.output
    assert "stopping the Tiled server" in _stop(directory, first)

    # without --roles it is served with roles still, and the scientist's key still works
    again = _serve(directory)
    serve.append(again)
    assert "Served with roles" in _wait_for_server(again)
    endpoint = find_running_server(directory)
    assert endpoint is not None
    secret = read_role_key(directory, TandemRole.SCIENTIST)
    assert secret is not None
    assert secret != (directory / API_KEY_FILE).read_text().strip()
    identity = key_identity(type(endpoint)(endpoint.url, secret).connect())
    assert identity is not None
    assert identity.role is TandemRole.SCIENTIST
    _stop(directory, again)
