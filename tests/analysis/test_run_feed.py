"""A following worker's look for work reads only the runs made since its last look (issue 16)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from bluesky_tiled_plugins import TiledWriter
from event_model import compose_run
from tiled.client.container import Container

from tandem.analysis.curves import Curve
from tandem.analysis.run_feed import RunFeed
from tandem.analysis.store import AnalysisRecord, AnalysisStore
from tandem.catalog import Catalog, InvalidRunQueryError, RawRun
from tandem.catalog_layout import raw_runs_node
from tandem.observations import AnalysisStatus
from tandem.tiled_server import EmbeddedTiledServer


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Container]:
    """A catalog of its own: the feed reads every run in it."""
    with EmbeddedTiledServer(tmp_path / "tiled") as endpoint:
        yield endpoint.connect()


class CountingCatalog(Catalog):
    """A catalog that counts the runs its readers were given in the order they were made."""

    read: int = 0

    def made_since(self, count: int) -> Iterator[RawRun]:
        for run in super().made_since(count):
            self.read += 1
            yield run


def run(client: Container, plan_name: str = "sample_plan", *, closed: bool = True) -> str:
    bundle = compose_run(metadata={"plan_name": plan_name, "campaign_id": "feed"})
    writer = TiledWriter(raw_runs_node(client))
    writer("start", bundle.start_doc)
    if closed:
        writer("stop", bundle.compose_stop(exit_status="success"))
    return str(bundle.start_doc["uid"])


def close(client: Container, uid: str) -> None:
    node = raw_runs_node(client)[uid]
    stop = {"uid": str(uuid.uuid4()), "run_start": uid, "time": 0.0, "exit_status": "success"}
    node.update_metadata(metadata={"stop": stop})


def analysed(client: Container, uid: str) -> None:
    q = np.linspace(0.01, 0.3, 20)
    curve = Curve(q, np.ones_like(q), 0.1 * np.ones_like(q), 0.001 * np.ones_like(q))
    AnalysisStore(client).put(
        AnalysisRecord(
            run_uid=uid, status=AnalysisStatus.OK, analysis_version="test", parameters={}, curve=curve
        )
    )


def test_closed_sample_runs_wait_until_analysed_and_only_new_runs_are_read(client: Container) -> None:
    catalog = CountingCatalog(client)
    feed = RunFeed(catalog, AnalysisStore(client))
    first = [run(client) for _ in range(3)]
    run(client, "measure_empty_cell")  # not a sample: never waits for analysis
    open_run = run(client, closed=False)
    assert feed.pending() == first
    assert catalog.read == 5

    analysed(client, first[0])
    later = run(client)
    assert feed.pending() == [*first[1:], later]
    assert catalog.read == 6  # the new run only: the five before were not read again

    close(client, open_run)  # an open run waits, and is ready once closed
    assert feed.pending() == [*first[1:], open_run, later]
    for uid in [*first[1:], open_run, later]:
        analysed(client, uid)
    assert feed.pending() == []
    assert catalog.read == 6


def test_made_since_reads_runs_in_the_order_they_were_made(client: Container) -> None:
    uids = [run(client) for _ in range(4)]
    catalog = Catalog(client)
    assert [r.uid for r in catalog.made_since(0)] == uids
    assert [r.uid for r in catalog.made_since(3)] == uids[3:]
    assert list(catalog.made_since(4)) == []
    with pytest.raises(InvalidRunQueryError):
        list(catalog.made_since(-1))
