"""The IPython profile, started non-interactively in a subprocess as `tandem shell` starts it.

The profile opens the station on the twin (its own CA session and cell-loader IOC)
and attaches to the test session's Tiled server, so the test reads the run back
from there. Each child runs in a process group of its own: whatever happens, the
group (IPython and the IOC and repeater it started) is stopped by the test.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from tiled.client.container import Container

from tandem.analysis.store import AnalysisStore
from tandem.bundled_profiles import IPYTHON_PROFILE
from tandem.catalog import Catalog
from tandem.cli.shell import shell_environment
from tandem.run_documents import ExitStatus
from tandem.tiled_endpoint import TiledEndpoint

pytestmark = pytest.mark.slow

CHILD_TIMEOUT_S = 240


def _environment(extra: dict[str, str]) -> dict[str, str]:
    # nothing of the caller's own tandem configuration may leak into the child
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    return {**env, **extra}


def _run(command: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    process = subprocess.Popen(
        command,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=CHILD_TIMEOUT_S)
    finally:
        # the session stops what it started at exit; this is for a child that hung or died half-way
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _ipython(code: str) -> list[str]:
    return [sys.executable, "-P", "-m", "IPython", f"--profile-dir={IPYTHON_PROFILE}", "-c", code]


def test_profile_runs_a_sample_plan_into_tiled(
    tiled_endpoint: TiledEndpoint, tiled_client: Container, tmp_path: Path
) -> None:
    env = _environment(
        {
            **shell_environment("saxs", sim=True, campaign=None, data=tmp_path / "data"),
            **tiled_endpoint.environ(),
        }
    )
    code = (
        "uid, = RE(sample_plan({'SDS': 0.05, 'NaCl': 0.01})); print('RUN', uid); print('PNG', plot_curve())"
    )
    result = _run(_ipython(code), env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]

    out = result.stdout
    assert "station saxs" in out
    assert "simulated (digital twin)" in out
    assert tiled_endpoint.url in out
    assert "saxs_liquid_handler" in out
    assert "sample_plan()" in out
    uid = next(line.split()[1] for line in out.splitlines() if line.startswith("RUN "))
    assert f"analysed run {uid[:8]}" in out  # the interactive one-liner, printed as the run closed
    png = Path(next(line.split(maxsplit=1)[1] for line in out.splitlines() if line.startswith("PNG ")))
    assert png.is_relative_to(tmp_path / "data")
    assert png.read_bytes().startswith(b"\x89PNG")

    run = Catalog(tiled_client).run(uid)
    assert run.exit_status is ExitStatus.SUCCESS
    assert run.plan_name == "sample_plan"
    assert run.station == "saxs"
    record = AnalysisStore(tiled_client).get(uid)
    assert record is not None
    assert record.ok, record.failure_reason
    # IPython kept its history in the session's data folder
    assert (tmp_path / "data" / "ipython-history.sqlite").exists()


def test_profile_without_a_station_says_what_to_set(tmp_path: Path) -> None:
    result = _run(_ipython("print('NS', 'RE' in dir())"), _environment({}), cwd=tmp_path)
    assert "the station session did not open" in result.stderr
    assert "TANDEM_STATION" in result.stderr
    assert "Traceback" not in result.stderr
    assert "NS False" in result.stdout


def test_tandem_shell_starts_the_profile_from_a_checkout(
    tiled_endpoint: TiledEndpoint, tmp_path: Path
) -> None:
    """`tandem shell` in the checkout's root imports the installed package, as anywhere else."""
    tandem = Path(sys.executable).with_name("tandem")
    checkout = Path(__file__).resolve().parents[2]
    code = "print('BACKEND', session.backend, session.station_id, type(RE).__name__)"
    command = [str(tandem), "shell", "--station", "sans", "--data", str(tmp_path / "d"), "--", "-c", code]
    result = _run(command, _environment(tiled_endpoint.environ()), cwd=checkout)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "BACKEND sim sans RunEngine" in result.stdout
    assert "station sans (neutron)" in result.stdout


def test_tandem_shell_refuses_an_unknown_station_before_ipython(tmp_path: Path) -> None:
    tandem = Path(sys.executable).with_name("tandem")
    result = _run([str(tandem), "shell", "--station", "xrd"], _environment({}), cwd=tmp_path)
    assert result.returncode == 1
    assert "'xrd' is not in campaign" in result.stderr
    assert "sans, saxs" in result.stderr
    assert not (tmp_path / "tandem-data").exists()


def test_tandem_shell_refuses_a_folder_that_is_not_tandems_before_ipython(tmp_path: Path) -> None:
    tandem = Path(sys.executable).with_name("tandem")
    thesis = tmp_path / "v"
    thesis.mkdir()
    (thesis / "ch1.tex").write_text("x")
    command = [str(tandem), "shell", "--station", "sans", "--data", str(thesis)]
    result = _run(command, _environment({}), cwd=tmp_path)
    assert result.returncode == 1
    assert "not a tandem data folder" in result.stderr
    assert sorted(p.name for p in thesis.iterdir()) == ["ch1.tex"]
