"""`tandem station status` asks an EPICS station's devices, not only its RE Manager (issue 13 #5).

A real station: the RE Manager (with Redis) on the EPICS backend, connected to the twin's beamline
IOC and a cell-loader IOC, each a caproto server on the session's loopback CA ports. The status is
asked by the `tandem` command in its own process, as a person would, so nothing of this process's
Channel Access state (a channel still thought connected) can answer for it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tandem.campaign.processes import start_station, stop_station
from tandem.campaign.station_state import StationProcess
from tandem.sim.ioc import RunningIOC
from tandem.tiled_endpoint import TiledEndpoint

pytestmark = pytest.mark.slow  # Redis, an RE Manager and two IOCs

TANDEM = Path(sys.executable).parent / "tandem"
STATION_PREFIX = "TST:HEALTH:SAXS:"
CELL_LOADER_PREFIX = "TST:HEALTH:SAXS:CL:"


def _status(state_dir: Path) -> tuple[int, str]:
    env = {
        **os.environ,
        "TANDEM_STATION_PREFIX": STATION_PREFIX,
        "TANDEM_CELL_LOADER_PREFIX": CELL_LOADER_PREFIX,
        "COLUMNS": "200",
    }
    done = subprocess.run(
        [str(TANDEM), "station", "status", "--state-dir", str(state_dir), "--device-timeout", "2"],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    return done.returncode, done.stdout + done.stderr


@pytest.fixture
def epics_saxs(
    tmp_path: Path, tiled_endpoint: TiledEndpoint, ioc_factory: object
) -> Iterator[tuple[StationProcess, RunningIOC, RunningIOC]]:
    from tandem.sim.cell_loader_ioc import CellLoaderIOC

    beamline = ioc_factory.serve(  # type: ignore[attr-defined]
        "tandem.sim.beamline_ioc:BeamlineIOC",
        prefix=STATION_PREFIX,
        options={"station": "saxs", "time_scale": 0.01, "seed": 1},
    )
    loader = ioc_factory.serve(CellLoaderIOC, prefix=CELL_LOADER_PREFIX, options={"time_scale": 0.01})  # type: ignore[attr-defined]
    with beamline as station_ioc, loader as cell_loader:
        env = {
            **tiled_endpoint.environ(),
            "TANDEM_DATA": str(tmp_path / "data"),
            "TANDEM_STATION_PREFIX": STATION_PREFIX,
            "TANDEM_CELL_LOADER_PREFIX": CELL_LOADER_PREFIX,
        }
        process = start_station("saxs", state_dir=tmp_path, sim=False, env=env, timeout_s=240)
        try:
            yield process, station_ioc, cell_loader
        finally:
            stop_station("saxs", state_dir=tmp_path)


def test_a_station_whose_cell_loader_ioc_died_is_unreachable_not_idle(
    tmp_path: Path, epics_saxs: tuple[StationProcess, RunningIOC, RunningIOC]
) -> None:
    _process, station_ioc, cell_loader = epics_saxs
    code, out = _status(tmp_path)
    assert code == 0, out
    assert "saxs: idle, environment open" in out
    assert "every device answers" in out

    os.kill(cell_loader.pid, signal.SIGKILL)  # the IOC dies; the RE Manager knows nothing of it
    code, out = _status(tmp_path)
    assert code == 1, out
    assert f"saxs: unreachable: cell loader — {CELL_LOADER_PREFIX}Valve:Sel and 13 more of its PVs" in out
    assert "saxs: idle" not in out
    assert "RE Manager: idle, environment open" in out

    os.kill(station_ioc.pid, signal.SIGKILL)  # and the beamline's: the first device of the station is named
    code, out = _status(tmp_path)
    assert code == 1, out
    assert f"saxs: unreachable: detector — {STATION_PREFIX}det:" in out
    assert "; cell loader — " in out


def _twin_cell_loader_ioc(manager_pid: int) -> psutil.Process:
    for child in psutil.Process(manager_pid).children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            if "TANDEM:SAXS:CL:" in child.cmdline():
                return child
    raise AssertionError("the twin station runs no cell-loader IOC")


def test_a_twin_station_whose_cell_loader_ioc_died_is_unreachable_not_idle(
    tmp_path: Path, tiled_endpoint: TiledEndpoint
) -> None:
    env = {**tiled_endpoint.environ(), "TANDEM_DATA": str(tmp_path / "data")}
    process = start_station("saxs", state_dir=tmp_path, env=env, timeout_s=240)
    try:
        code, out = _status(tmp_path)
        assert code == 0, out
        assert "saxs: idle, environment open" in out
        assert "every device answers" in out

        ioc = _twin_cell_loader_ioc(process.pid)
        ioc.send_signal(signal.SIGSTOP)  # a hung IOC: its process is there, it answers nothing
        try:
            code, out = _status(tmp_path)
        finally:
            ioc.send_signal(signal.SIGCONT)
        assert code == 1, out
        assert "saxs: unreachable: cell loader — TANDEM:SAXS:CL:Busy-RB does not answer" in out
        assert f"pid {ioc.pid}" in out
        code, out = _status(tmp_path)
        assert code == 0, out  # it answers again

        ioc.send_signal(signal.SIGKILL)  # a crashed IOC; the station's worker goes on
        code, out = _status(tmp_path)
        assert code == 1, out
        assert "saxs: unreachable: cell loader — its IOC (TANDEM:SAXS:CL:) is not running" in out
        assert "RE Manager: idle, environment open" in out
    finally:
        stop_station("saxs", state_dir=tmp_path)
