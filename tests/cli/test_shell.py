"""`tandem shell`: its help says where PV prefixes come from; a real line asked for on the twin is refused
before IPython starts; on a real line (caproto IOCs, the chatterbox robot) the IPython session opens
from the station's profile and each run prints bluesky's live table."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from real_line import line_prefixes, serve_line, write_line
from typer.testing import CliRunner

from tandem.cli import app
from tandem.tiled_endpoint import API_KEY_ENV, URI_ENV, TiledEndpoint


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "400"})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, " ".join(result.output.split())


def test_help_says_which_prefix_wins_and_what_the_table_is() -> None:
    code, out = _invoke("shell", "--help")
    assert code == 0
    assert "This option wins, then TANDEM_STATION_PREFIX, then the station's instrument profile" in out
    assert "bec.disable_table()" in out
    assert "the robot the profile names" in out


def test_a_real_line_on_the_twin_is_refused_before_ipython_starts(tmp_path: Path) -> None:
    campaign = write_line(tmp_path, line_prefixes())
    data = tmp_path / "data"
    code, out = _invoke("shell", "--station", "saxs", "--campaign", str(campaign), "--data", str(data))
    assert code == 1
    assert "says backend: epics" in out
    assert "--epics" in out
    assert not data.exists()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_shell_opens_a_real_line_from_its_profile_and_shows_the_live_table(
    ioc_factory: object, tiled_endpoint: TiledEndpoint, tmp_path: Path
) -> None:
    command = (
        "print(type(saxs_liquid_handler.backend).__name__); "
        "RE(sample_plan({'SDS': 0.05})); bec.disable_table(); RE(measure_empty_cell())"
    )
    with serve_line(ioc_factory) as line:
        campaign = write_line(tmp_path, line)
        data = tmp_path / "data"
        options = ["--station", "saxs", "--epics", "--campaign", str(campaign), "--data", str(data)]
        done = subprocess.run(
            [sys.executable, "-m", "tandem.cli", "shell", *options, "--", "-c", command],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, URI_ENV: tiled_endpoint.url, API_KEY_ENV: tiled_endpoint.api_key or ""},
            timeout=240,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "tandem · station saxs (xray) · EPICS" in out
    assert f"station at {line.station} (profile saxs_line)" in out
    assert "PyLabRobot's 'chatterbox' robot, as profile 'saxs_line' names it" in out
    assert "PyLabRobotBackend" in out
    # the live table of the sample plan's primary stream, then none once disabled
    headers = [row for row in out.splitlines() if "seq_num" in row]
    assert len(headers) == 1
    assert "saxs_monitor_incident_counts" in headers[0]
    assert out.count("Persistent Unique Scan ID") == 2
    assert "analysed run" in out


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_twin_session_leaves_nothing_but_tandems_output_on_the_terminal(tmp_path: Path) -> None:
    """The session stops its cell-loader IOC after libca let go of it: no "Unexpected problem with
    CA circuit" from libca when IPython exits, nor anything else on stderr."""
    options = ["--station", "saxs", "--sim", "--data", str(tmp_path)]
    done = subprocess.run(
        [sys.executable, "-m", "tandem.cli", "shell", *options, "--", "-c", "RE(measure_empty_cell())"],
        capture_output=True,
        text=True,
        check=False,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Persistent Unique Scan ID" in done.stdout
    assert done.stderr == ""
