"""A campaign killed with SIGKILL and resumed neither repeats nor loses a sample (checked in Tiled)."""

from __future__ import annotations

import json
import re
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from campaign_processes import campaign_file, finish, kill_group, samples_done, start_campaign

from tandem.campaign.ledger import INTERRUPTED_REASON, Ledger, SampleStatus
from tandem.catalog import Catalog
from tandem.run_documents import ExitStatus
from tandem.tiled_server import EmbeddedTiledServer

BUDGET = 5


@pytest.fixture
def small_campaign(tmp_path: Path) -> Path:
    """The demo campaign on a budget of a few samples."""
    return campaign_file(tmp_path, "resume-test", BUDGET, max_consecutive_failures=5)


def _done(data: Path, campaign_id: str) -> int:
    return samples_done(data, campaign_id)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_killed_campaign_resumes_without_repeating_or_losing_a_sample(
    small_campaign: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    first = start_campaign(small_campaign, data)
    try:
        deadline = time.monotonic() + 600
        while _done(data, "resume-test") < 2:
            assert first.poll() is None, first.stdout.read().decode() if first.stdout else ""
            assert time.monotonic() < deadline, "the campaign made no progress"
            time.sleep(1.0)
    finally:
        kill_group(first)

    second = start_campaign(small_campaign, data, resume=True)
    output = finish(second)
    assert second.returncode == 0, output
    # the progress line went on from the restored beamtime, and its failures agree with the summary
    last_status = [line for line in output.splitlines() if f"{BUDGET}/{BUDGET}" in line][-1]
    summary_hours = re.search(r"station hours: ([0-9.]+)", output)
    assert summary_hours is not None, output
    assert f"· {summary_hours.group(1)} h" in last_status, (last_status, output)
    summary_failed = re.search(r"samples: \d+ \((\d+) failed", output)
    assert summary_failed is not None, output
    shown_failed = re.search(r"(\d+) failed", last_status)
    assert int(summary_failed.group(1)) == (int(shown_failed.group(1)) if shown_failed else 0), output

    with EmbeddedTiledServer(data / "tiled") as endpoint:
        client = endpoint.connect()
        entries = Ledger.open(client, "resume-test").entries()
        measured = [e for e in entries if e.status is SampleStatus.MEASURED]
        interrupted = [e for e in entries if e.status is SampleStatus.INTERRUPTED]
        assert all(e.done for e in entries), "every decided sample has a result"
        # the budget counts samples that ran to their end: one cut off by the kill is run again
        assert len(entries) == BUDGET + len(interrupted), [(e.status, e.reason) for e in entries]
        # no sample measured twice: one successful run per measured sample, and no run outside the ledger
        runs = Catalog(client).runs(campaign_id="resume-test", plan_name="sample_plan", exit_status="success")
        per_sample = Counter(run.sample_uid for run in runs)
        assert all(n == 1 for n in per_sample.values()), per_sample
        assert set(per_sample) == {e.sample_uid for e in measured}
        # a sample cut off mid-run is recorded as interrupted, and its decision was run again as a new sample
        decisions = Counter(e.decision_uid for e in entries)
        for entry in interrupted:
            assert entry.reason == INTERRUPTED_REASON
            assert decisions[entry.decision_uid] == 2
        # no run is left open: the one the kill cut off is closed as aborted, with the reason
        every_run = Catalog(client).runs(campaign_id="resume-test")
        assert all(run.is_closed for run in every_run), [r for r in every_run if not r.is_closed]
        aborted = [run for run in every_run if run.exit_status is ExitStatus.ABORT]
        assert {run.reason for run in aborted} <= {INTERRUPTED_REASON}
        assert {run.sample_uid for run in aborted if run.plan_name == "sample_plan"} == {
            e.sample_uid for e in interrupted
        }
    # the budget is exact: the report counts the samples that ran, the interrupted ones apart
    report = json.loads((data / "report" / "report.json").read_text())
    assert report["samples"] == BUDGET, report
    assert report["interrupted"] == len(interrupted)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_ctrl_c_stops_after_the_sample_writes_the_report_and_exits_130(
    small_campaign: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    process = start_campaign(small_campaign, data)
    try:
        deadline = time.monotonic() + 600
        while _done(data, "resume-test") < 1:
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            assert time.monotonic() < deadline, "the campaign made no progress"
            time.sleep(1.0)
        process.send_signal(signal.SIGINT)  # what Ctrl-C sends to the campaign's process
        output, _ = process.communicate(timeout=600)
    finally:
        kill_group(process)
    text = output.decode()
    assert process.returncode == 130, text
    assert "Traceback" not in text
    assert "tandem campaign resume" in text
    assert (data / "report" / "report.json").exists()
