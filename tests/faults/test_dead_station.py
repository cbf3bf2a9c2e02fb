"""A station whose cell-loader IOC dies mid-campaign is set aside; the other station gets the budget.

Issue 13, reproducer 5: before the breaker every later sample on the dead station failed, the
budget was spent on failures and the campaign exited 0. Here the IOC process is killed with
SIGKILL while `tandem campaign` runs, as a crashed IOC host would be.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest
import yaml

from tandem.campaign.ledger import Ledger, SampleStatus
from tandem.tiled_server import EmbeddedTiledServer, find_running_server

DEMO = Path(__file__).resolve().parents[2] / "examples" / "campaigns"
BUDGET = 10
#: SANS samples take long: with the IOC killed after the first, the SAXS station works through its clock
#: for about twenty samples before SANS is free again, then SANS fails its samples quickly
DEAD_SANS_BUDGET = 32


def _campaign_file(tmp_path: Path, campaign_id: str, budget: int = BUDGET, **extra: object) -> Path:
    for deck in ("saxs_deck.yaml", "sans_deck.yaml"):
        shutil.copy(DEMO / deck, tmp_path / deck)
    spec = yaml.safe_load((DEMO / "demo.yaml").read_text())
    spec["id"] = campaign_id
    spec["stop"] = {"max_samples": budget, "max_consecutive_failures": 50}
    spec.update(extra)
    path = tmp_path / "campaign.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _start(config: Path, data: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-P", "-m", "tandem.cli", "campaign", str(config), "--data", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _measured(data: Path, campaign_id: str) -> int:
    endpoint = find_running_server(data / "tiled")
    if endpoint is None:
        return 0
    try:
        entries = Ledger.open(endpoint.connect(), campaign_id).entries()
    except Exception:  # the ledger is not written yet
        return 0
    return sum(e.status is SampleStatus.MEASURED for e in entries)


def _kill_ioc(campaign: subprocess.Popen[bytes], station: str) -> None:
    """SIGKILL the campaign's cell-loader IOC of `station` (a child process serving its prefix)."""
    prefix = f"TANDEM:{station.upper()}:CL:"
    for child in psutil.Process(campaign.pid).children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            if prefix in child.cmdline():
                child.send_signal(signal.SIGKILL)
                return
    raise AssertionError(f"no IOC serving {prefix} among the campaign's processes")


def _wait_for(data: Path, campaign_id: str, n: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 600
    while _measured(data, campaign_id) < n:
        assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
        assert time.monotonic() < deadline, "the campaign made no progress"
        time.sleep(0.5)


def _finish(process: subprocess.Popen[bytes]) -> str:
    try:
        output, _ = process.communicate(timeout=600)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    return output.decode()


def _entries(data: Path, campaign_id: str) -> list:
    with EmbeddedTiledServer(data / "tiled") as endpoint:
        return Ledger.open(endpoint.connect(), campaign_id).entries()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_station_whose_ioc_died_is_set_aside_and_the_other_gets_the_budget(tmp_path: Path) -> None:
    config = _campaign_file(
        tmp_path,
        "dead-sans",
        DEAD_SANS_BUDGET,
        faults={"set_aside_after_failures": 2, "retry_after_min": 600},
    )
    data = tmp_path / "data"
    process = _start(config, data)
    try:
        _wait_for(data, "dead-sans", 1, process)
        _kill_ioc(process, "sans")
    finally:
        output = _finish(process)
    assert process.returncode == 0, output
    assert "station sans was set aside" in output, output

    entries = _entries(data, "dead-sans")
    counted = [e for e in entries if e.counts]
    assert len(counted) == DEAD_SANS_BUDGET, [(e.station, e.status) for e in entries]
    # after the kill: sans fails twice, is set aside, and saxs takes the rest of the budget
    failed_sans = [e for e in counted if e.station == "sans" and e.status is SampleStatus.FAILED]
    assert len(failed_sans) == 2, [(e.station, e.status, e.reason) for e in counted]
    last_failure = max(e.decided_at for e in failed_sans)
    after = Counter(e.station for e in counted if e.decided_at > last_failure)
    assert set(after) <= {"saxs"}, after
    assert sum(e.status is SampleStatus.MEASURED for e in counted) == DEAD_SANS_BUDGET - 2


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_every_station_set_aside_stops_the_campaign_with_status_3(tmp_path: Path) -> None:
    config = _campaign_file(tmp_path, "all-dead", faults={"set_aside_after_failures": 2})
    data = tmp_path / "data"
    process = _start(config, data)
    try:
        _wait_for(data, "all-dead", 1, process)
        _kill_ioc(process, "saxs")
        _kill_ioc(process, "sans")
    finally:
        output = _finish(process)
    assert process.returncode == 3, output
    assert "every station is set aside" in output, output
    assert "Traceback" not in output, output
    entries = _entries(data, "all-dead")
    assert sum(e.counts for e in entries) < BUDGET  # the budget was not spent on failures
