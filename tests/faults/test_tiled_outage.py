"""Fault injection: the embedded Tiled server is killed (-9) while runs are being written (issue 13, item 2).

Real processes only: a real embedded Tiled server per test (it is killed), a real RunEngine, the
real Bluesky TiledWriter under `ReplayingTiledWriter`, and the `StoreGuard` that restarts the server.

Tiled's client retries a failed request by itself for tens of seconds (stamina); the tests turn
that off (`stamina.set_testing`), so that each failure reaches the queue at once and the test
exercises tandem's own recovery, not the client's patience.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import stamina
from bluesky import RunEngine
from bluesky import plan_stubs as bps
from bluesky import preprocessors as bpp
from ophyd.sim import SynSignal

from tandem.catalog import Catalog
from tandem.catalog_layout import raw_runs_node
from tandem.document_queue import DocumentQueue, UnwrittenDocumentsError
from tandem.replaying_writer import ReplayingTiledWriter
from tandem.run_documents import ExitStatus
from tandem.store_guard import Backoff, StoreGuard
from tandem.tiled_server import EmbeddedTiledServer

pytestmark = pytest.mark.slow


def _state(pid: int) -> str | None:
    """The /proc state letter of `pid` ('Z' for a zombie), None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return None
    return text.split("State:", 1)[1].split()[0]


@pytest.fixture
def no_client_retries() -> Iterator[None]:
    stamina.set_testing(True, attempts=1)
    try:
        yield
    finally:
        stamina.set_testing(False)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedTiledServer]:
    server = EmbeddedTiledServer(tmp_path / "store", die_with_parent=True)
    with server:
        yield server


class _Frames(SynSignal):  # type: ignore[misc]  # ophyd is untyped
    """A 2-D detector: each read is a new 8x8 frame, numbered by its value."""

    def __init__(self) -> None:
        self.count = 0

        def frame() -> np.ndarray:
            self.count += 1
            return np.full((8, 8), self.count, dtype="u4")

        super().__init__(func=frame, name="frame")


def _measure(detector: Any, n: int, kill_after: int | None, kill: Any) -> Any:
    """A run of `n` frames; the store is killed (once the queue wrote `kill_after` of them)."""

    @bpp.run_decorator(md={"purpose": "fault"})
    def inner() -> Any:
        for i in range(n):
            if i == kill_after:
                kill()
            yield from bps.trigger_and_read([detector])

    return inner()


def _kill(server: EmbeddedTiledServer) -> int:
    """kill -9 the server and return once it is dead (a zombie: nobody has reaped it yet)."""
    pid = server.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    while _state(pid) not in ("Z", None):
        os.sched_yield()
    return pid


def test_a_run_cut_by_a_killed_server_lands_whole_and_once(
    server: EmbeddedTiledServer, no_client_retries: None
) -> None:
    client = server.endpoint.connect()  # made before the kill: it must work again after the restart
    guard = StoreGuard(server.endpoint, server=server, backoff=Backoff(initial_s=0.05, max_s=0.5))
    writer = ReplayingTiledWriter(raw_runs_node(client), outages=lambda: guard.outages)
    queue = DocumentQueue(writer, name="fault writer", wait_for_store=guard.wait_for_store)
    run_engine = RunEngine({}, context_managers=[])
    run_engine.subscribe(queue)
    detector = _Frames()
    killed: list[int] = []

    def kill() -> None:
        queue.flush(timeout_s=120)  # the first frames are in Tiled: the kill cuts the run in the middle
        killed.append(_kill(server))

    try:
        (uid,) = run_engine(_measure(detector, n=6, kill_after=3, kill=kill))
        # the loop's guard: before the next sample it waits for the store (here it restarts it)
        assert guard.wait_for_store(stop_requested=lambda: False)
        queue.flush(timeout_s=300)
        (second,) = run_engine(_measure(detector, n=2, kill_after=None, kill=None))
        queue.close(timeout_s=300)
    finally:
        guard.close()
    assert server.restarts >= 1
    assert _state(killed[0]) is None, "the killed server was reaped, not left a zombie"
    catalog = Catalog(client)  # the client from before the kill
    run = catalog.run(uid)
    assert run.exit_status is ExitStatus.SUCCESS
    numbers = run.frames()[:, 0, 0]  # the detector numbers its frames (describing the run reads one too)
    np.testing.assert_array_equal(numbers, np.arange(numbers[0], numbers[0] + 6))  # each once, in order
    np.testing.assert_array_equal(run.read("seq_num"), [1, 2, 3, 4, 5, 6])
    assert catalog.run(second).frames().shape == (2, 8, 8)
    assert writer.rebuilds >= 1


def test_a_stop_during_an_outage_returns_promptly_and_reports_what_was_not_written(
    server: EmbeddedTiledServer, no_client_retries: None
) -> None:
    client = server.endpoint.connect()
    # a store the caller does not own: the guard can only wait for it, so it stays down
    guard = StoreGuard(server.endpoint, backoff=Backoff(initial_s=0.05, max_s=0.5))
    writer = ReplayingTiledWriter(raw_runs_node(client), outages=lambda: guard.outages)
    stop = threading.Event()
    queue = DocumentQueue(writer, name="fault writer", wait_for_store=guard.wait_for_store)
    run_engine = RunEngine({}, context_managers=[])
    run_engine.subscribe(queue)
    pid = _kill(server)
    (uid,) = run_engine(_measure(_Frames(), n=3, kill_after=None, kill=None))

    results: list[bool] = []
    waiting = threading.Thread(target=lambda: results.append(guard.wait_for_store(stop)))
    waiting.start()
    stop.set()  # Ctrl-C
    waiting.join()  # no timeout: it must come back by itself
    assert results == [False]

    with pytest.raises(UnwrittenDocumentsError) as unwritten:
        queue.close(stop_requested=stop)
    guard.close()
    error = unwritten.value
    assert error.runs == (uid,)
    names = [name for name, _ in error.documents]
    assert names == ["start", "descriptor", "event", "event", "event", "stop"]
    assert "6 document(s)" in str(error)
    assert uid in str(error)
    assert _state(pid) == "Z", "nobody has looked at the server that is not the guard's"
    assert not server.alive(), "its owner notices that it died"
    assert _state(pid) is None, "and reaps it: no zombie"
