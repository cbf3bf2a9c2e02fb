"""A station whose cell-loader IOC dies mid-campaign is set aside; the other station gets the budget.

Issue 13, reproducer 5: before the breaker every later sample on the dead station failed, the
budget was spent on failures and the campaign exited 0. Here the IOC process is killed with
SIGKILL while `tandem campaign` runs, as a crashed IOC host would be.
"""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import pytest
from campaign_processes import (
    campaign_file,
    child_serving,
    finish,
    ledger_entries,
    start_campaign,
    wait_for_samples,
)

from tandem.campaign.ledger import SampleStatus

ALL_DEAD_BUDGET = 40
#: SANS samples take long: with the IOC killed after the first, the SAXS station works through its clock
#: for about twenty samples before SANS is free again, then SANS fails its samples quickly
DEAD_SANS_BUDGET = 32

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _kill_ioc(process, station: str) -> None:  # type: ignore[no-untyped-def]
    child_serving(process, f"TANDEM:{station.upper()}:CL:").send_signal(signal.SIGKILL)


def test_a_station_whose_ioc_died_is_set_aside_and_the_other_gets_the_budget(tmp_path: Path) -> None:
    faults = {"set_aside_after_failures": 2, "retry_after_min": 600}
    config = campaign_file(tmp_path, "dead-sans", DEAD_SANS_BUDGET, faults=faults)
    data = tmp_path / "data"
    process = start_campaign(config, data)
    try:
        wait_for_samples(process, data, "dead-sans", 1)
        _kill_ioc(process, "sans")
    finally:
        output = finish(process)
    assert process.returncode == 0, output
    assert "station sans was set aside" in output, output

    entries = ledger_entries(data, "dead-sans")
    counted = [e for e in entries if e.counts]
    assert len(counted) == DEAD_SANS_BUDGET, [(e.station, e.status) for e in entries]
    # after the kill: sans fails twice, is set aside, and saxs takes the rest of the budget
    failed_sans = [e for e in counted if e.station == "sans" and e.status is SampleStatus.FAILED]
    assert len(failed_sans) == 2, [(e.station, e.status, e.reason) for e in counted]
    last_failure = max(e.decided_at for e in failed_sans)
    after = Counter(e.station for e in counted if e.decided_at > last_failure)
    assert set(after) <= {"saxs"}, after
    assert sum(e.status is SampleStatus.MEASURED for e in counted) == DEAD_SANS_BUDGET - 2


def test_every_station_set_aside_stops_the_campaign_with_status_3(tmp_path: Path) -> None:
    # a budget no run can reach and no trial before both are set aside: only the breaker stops it
    faults = {"set_aside_after_failures": 2, "retry_after_min": 600}
    config = campaign_file(tmp_path, "all-dead", ALL_DEAD_BUDGET, faults=faults)
    data = tmp_path / "data"
    process = start_campaign(config, data)
    try:
        wait_for_samples(process, data, "all-dead", 1)
        _kill_ioc(process, "saxs")
        _kill_ioc(process, "sans")
    finally:
        output = finish(process)
    assert process.returncode == 3, output
    assert "every station is set aside" in output, output
    assert "Traceback" not in output, output
    entries = ledger_entries(data, "all-dead")
    assert sum(e.counts for e in entries) < ALL_DEAD_BUDGET  # the budget was not spent on failures
    failed = [e for e in entries if e.status is SampleStatus.FAILED]
    assert {e.station for e in failed} == {"saxs", "sans"}
    assert len(failed) <= 4, [(e.station, e.reason) for e in failed]  # two each, then the stop
