"""`tandem campaign` goes on through a Tiled outage: its server is killed (-9) mid-campaign.

Issue 13, reproducer 2: the loop used to keep "measuring" with nothing stored, print dozens of
tracebacks, hang at the end and leave the dead server as a zombie. Now the campaign pauses before
the next sample, restarts the server it owns (same port, folder and key), and finishes its budget
with every sample in Tiled once.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from campaign_processes import campaign_file, child_serving, finish, start_campaign, wait_for_samples

from tandem.campaign.ledger import Ledger, SampleStatus
from tandem.catalog import Catalog
from tandem.tiled_server import EmbeddedTiledServer

BUDGET = 12


def _state_known(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def _zombie(pid: int) -> bool:
    try:
        return "State:\tZ" in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_campaign_rides_out_a_killed_tiled_server(tmp_path: Path) -> None:
    config = campaign_file(tmp_path, "outage", BUDGET)
    data = tmp_path / "data"
    process = start_campaign(config, data)
    try:
        wait_for_samples(process, data, "outage", 2)
        server = child_serving(process, "tandem.tiled_server")
        os.kill(server.pid, signal.SIGKILL)
        # the campaign notices (before its next sample at the latest), reaps and restarts the server
        deadline = time.monotonic() + 180
        while _state_known(server.pid) and process.poll() is None:
            assert time.monotonic() < deadline, f"the killed server was not reaped: {_zombie(server.pid)=}"
            time.sleep(0.2)
    finally:
        output = finish(process)
    assert process.returncode == 0, output
    assert "Traceback" not in output, output
    assert "does not answer: measuring is paused" in output, output  # the outage was told

    with EmbeddedTiledServer(data / "tiled") as endpoint:
        client = endpoint.connect()
        entries = Ledger.open(client, "outage").entries()
        assert all(e.done for e in entries)
        counted = [e for e in entries if e.counts]
        assert len(counted) == BUDGET, [(e.station, e.status, e.reason) for e in entries]
        measured = {e.sample_uid for e in counted if e.status is SampleStatus.MEASURED}
        runs = Catalog(client).runs(campaign_id="outage", plan_name="sample_plan", exit_status="success")
        per_sample = Counter(run.sample_uid for run in runs)
        assert all(n == 1 for n in per_sample.values()), per_sample  # none written twice
        assert set(per_sample) == measured  # none lost
        assert all(run.is_closed for run in Catalog(client).runs(campaign_id="outage"))
