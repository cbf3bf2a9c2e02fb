"""`tandem analyze --follow`: killed mid-backlog and restarted, it analyses every run exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tiled.client.container import Container

from tandem.analysis.store import AnalysisStore
from tandem.tiled_endpoint import TiledEndpoint

pytestmark = pytest.mark.slow

TANDEM = str(Path(sys.executable).with_name("tandem"))


@pytest.fixture
def start_worker(tiled_endpoint: TiledEndpoint) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, **tiled_endpoint.environ()}
        process = subprocess.Popen(
            [TANDEM, "analyze", "--sim", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def _wait(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_killed_worker_restarts_and_analyses_every_run_once(
    tiled_client: Container,
    twin_run: Callable[..., str],
    unique_campaign_id: str,
    start_worker: Callable[..., subprocess.Popen[bytes]],
) -> None:
    compositions = [{"SDS": 0.02 + 0.01 * i, "PPG": 0.0, "NaCl": 0.0} for i in range(6)]
    uids = [
        twin_run(tiled_client, "sans", comp, campaign_id=unique_campaign_id, exposure_s=600.0, seed=i)
        for i, comp in enumerate(compositions)
    ]
    store = AnalysisStore(tiled_client)

    def done() -> set[str]:
        return {r.run_uid for r in store.records(campaign_id=unique_campaign_id, with_curve=False)}

    worker = start_worker("--follow", "--poll", "0.1")
    _wait(lambda: len(done()) >= 2 or worker.poll() is not None, 300, "the first analysed runs")
    assert worker.poll() is None, worker.communicate()[0].decode()
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=30)
    before = {
        r.run_uid: r.analysed_at for r in store.records(campaign_id=unique_campaign_id, with_curve=False)
    }
    assert 2 <= len(before) < len(uids), "the worker must be killed mid-backlog"

    again = start_worker()  # catch up on the backlog, then exit
    output, _ = again.communicate(timeout=600)
    assert again.returncode == 0, output.decode()

    records = store.records(campaign_id=unique_campaign_id, with_curve=False)
    assert sorted(r.run_uid for r in records) == sorted(uids)
    # nothing finished before the kill was done again
    for record in records:
        if record.run_uid in before:
            assert record.analysed_at == before[record.run_uid]
    assert all(r.ok for r in records), [r.failure_reason for r in records]
    node = tiled_client["analysed"]
    assert all(node[uid].metadata["complete"] for uid in uids)
