"""The catalog's layout and the helpers that make its nodes, against a real Tiled server.

The helpers must hold when several processes make the same node at once (a campaign runner, its
analysis workers and an agent daemon share one catalog), and the writers must put their nodes where
`tandem.catalog_layout.LAYOUT` says, with the specs it says.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx
import numpy as np
import pytest
from bluesky_tiled_plugins import TiledWriter
from event_model import compose_run
from tiled.client.container import Container

from tandem.agents.journal import Entry, EntryStatus, Journal
from tandem.agents.records import DecisionRecord, write_records
from tandem.analysis.claims import RunClaims
from tandem.analysis.curves import Curve
from tandem.analysis.store import AnalysisRecord, AnalysisStore
from tandem.campaign.ledger import Ledger, LedgerEntry
from tandem.catalog_layout import (
    ANALYSED,
    ANALYSIS_CLAIMS,
    CAMPAIGNS,
    LAYOUT,
    RAW,
    Part,
    campaign_container,
    child_container,
    create_afresh,
    create_if_absent,
    create_or_replace_metadata,
    raw_runs_node,
)
from tandem.observations import AnalysisStatus
from tandem.tiled_endpoint import TiledEndpoint

T = TypeVar("T")
WRITERS = 6


def _at_once(endpoint: TiledEndpoint, parent_key: str, write: Callable[[Any, int], T]) -> list[T]:
    """`write(parent, i)` from `WRITERS` threads released together, each with its own client
    (its own connection pool: a process each, in effect)."""
    parents = [endpoint.connect()[parent_key] for _ in range(WRITERS)]
    start = threading.Barrier(WRITERS)

    def one(i: int) -> T:
        start.wait(timeout=30)
        return write(parents[i], i)

    with ThreadPoolExecutor(WRITERS) as pool:
        return [f.result() for f in [pool.submit(one, i) for i in range(WRITERS)]]


@pytest.fixture
def parent_key(tiled_client: Container) -> str:
    key = f"layout-test-{uuid.uuid4().hex[:12]}"
    tiled_client.create_container(key)
    return key


# --- making a node: race-safe --------------------------------------------------------------------


def test_child_container_made_by_many_writers_at_once_is_one_node(
    tiled_endpoint: TiledEndpoint, tiled_client: Container, parent_key: str
) -> None:
    for round_ in range(4):
        key = f"shared-{round_}"
        nodes = _at_once(
            tiled_endpoint,
            parent_key,
            lambda parent, i, key=key: child_container(parent, key, metadata={"writer": i}),
        )
        # every writer got the one node, whoever made it; none of them failed
        assert len({node.uri for node in nodes}) == 1
        assert len({node.metadata["writer"] for node in nodes}) == 1
    assert sorted(tiled_client[parent_key]) == [f"shared-{n}" for n in range(4)]


class _LooksTooEarly:
    """A parent whose first look at `key` misses, and another process creates `key` right after it:
    the interleaving a look-then-create helper fails on, made certain."""

    def __init__(self, parent: Any, other: Any) -> None:
        self._parent, self._other, self.looks = parent, other, 0

    def __getitem__(self, key: str) -> Any:
        self.looks += 1
        if self.looks == 1:
            try:
                return self._parent[key]
            finally:
                self._other.create_container(key, metadata={"by": "the other process"})
        return self._parent[key]

    def create_container(self, *args: Any, **kwargs: Any) -> Any:
        return self._parent.create_container(*args, **kwargs)


def test_child_container_takes_the_node_another_process_made_after_its_look(
    tiled_endpoint: TiledEndpoint, tiled_client: Container, parent_key: str
) -> None:
    parent = _LooksTooEarly(tiled_client[parent_key], tiled_endpoint.connect()[parent_key])
    node = child_container(parent, "contested", metadata={"by": "us"})  # type: ignore[arg-type]
    assert parent.looks == 2  # missed, created (refused: 409), looked again
    assert node.metadata["by"] == "the other process"


def test_child_container_raises_what_is_not_a_conflict() -> None:
    request = httpx.Request("POST", "http://tiled.invalid/api/v1/metadata/")
    response = httpx.Response(500, request=request)
    error = httpx.HTTPStatusError("server error", request=request, response=response)

    class Failing:
        def __getitem__(self, key: str) -> Any:
            raise KeyError(key)

        def create_container(self, *args: Any, **kwargs: Any) -> Any:
            raise error

    with pytest.raises(httpx.HTTPStatusError) as raised:
        child_container(Failing(), "x")  # type: ignore[arg-type]
    assert raised.value is error


def test_create_if_absent_from_many_writers_creates_once(
    tiled_endpoint: TiledEndpoint, tiled_client: Container, parent_key: str
) -> None:
    made = _at_once(
        tiled_endpoint, parent_key, lambda parent, i: create_if_absent(parent, "record", {"writer": i})
    )
    winners = [i for i, node in enumerate(made) if node is not None]
    assert len(winners) == 1
    assert tiled_client[parent_key]["record"].metadata["writer"] == winners[0]


def test_create_or_replace_metadata_from_many_writers_leaves_one_writers_metadata(
    tiled_endpoint: TiledEndpoint, tiled_client: Container, parent_key: str
) -> None:
    _at_once(
        tiled_endpoint,
        parent_key,
        lambda parent, i: create_or_replace_metadata(parent, "entry", {"writer": i, "status": "queued"}),
    )
    node = tiled_client[parent_key]["entry"]
    assert dict(node.metadata) in [{"writer": i, "status": "queued"} for i in range(WRITERS)]

    node.write_array(np.arange(3.0), key="kept")
    create_or_replace_metadata(tiled_client[parent_key], "entry", {"status": "measured"})
    again = tiled_client[parent_key]["entry"]
    assert dict(again.metadata) == {"status": "measured"}  # replaced, not merged
    assert list(again) == ["kept"]  # its children stay


def test_create_afresh_replaces_a_node_with_everything_it_held(
    tiled_client: Container, parent_key: str
) -> None:
    parent = tiled_client[parent_key]
    first = create_afresh(parent, "result", {"attempt": 1, "complete": False})
    first.write_array(np.arange(4.0), key="half_written")
    second = create_afresh(parent, "result", {"attempt": 2})
    assert dict(second.metadata) == {"attempt": 2}
    assert list(tiled_client[parent_key]["result"]) == []


def test_a_campaign_node_holds_only_its_parts(tiled_client: Container, parent_key: str) -> None:
    with pytest.raises(ValueError, match="holds no 'notes'"):
        campaign_container(tiled_client[parent_key], "notes")


# --- the writers follow the layout ---------------------------------------------------------------


def _segments(part: Part) -> list[str]:
    return part.path.split("/")


def _matches(pattern: list[str], segments: list[str]) -> bool:
    return len(pattern) == len(segments) and all(
        p.startswith("<") or p == s for p, s in zip(pattern, segments, strict=True)
    )


def _declares_children(segments: list[str]) -> bool:
    return any(
        len(_segments(p)) == len(segments) + 1 and _matches(_segments(p)[:-1], segments) for p in LAYOUT
    )


def _walk(node: Any, segments: list[str], found: dict[str, Any]) -> None:
    """Every node from `node` down, as far as the layout declares nodes below."""
    found["/".join(segments)] = node
    if _declares_children(segments):
        for key, child in node.items():
            _walk(child, [*segments, key], found)


def _write_a_campaign(client: Container, campaign_id: str) -> tuple[str, str, str]:
    """Everything tandem writes for a campaign, by the writers themselves; the raw run's uid, the
    decision's uid and the key of the analysis worker's claim on the run."""
    bundle = compose_run(metadata={"campaign_id": campaign_id})
    writer = TiledWriter(raw_runs_node(client))
    writer("start", bundle.start_doc)
    writer("stop", bundle.compose_stop(exit_status="success"))
    run_uid = bundle.start_doc["uid"]

    claim = RunClaims(client).claim(run_uid)
    assert claim is not None
    q = np.linspace(0.01, 0.3, 20)
    AnalysisStore(client).put(
        AnalysisRecord(
            run_uid=run_uid,
            status=AnalysisStatus.OK,
            analysis_version="test",
            parameters={},
            campaign_id=campaign_id,
            curve=Curve(q, np.ones_like(q), 0.1 * np.ones_like(q), 0.001 * np.ones_like(q)),
        )
    )

    decision_uid = str(uuid.uuid4())
    target, scan = {"sds": 0.02}, {"exposure_s": 1.0}
    record = {"id": campaign_id}
    ledger = Ledger.create(client, campaign_id, record)
    ledger.add(LedgerEntry(str(uuid.uuid4()), campaign_id, "saxs", decision_uid, target, scan))
    ledger.record_phases([{"seq": 1, "kind": "new"}], {"names": ["A"]})
    write_records(
        ledger.decisions,
        [
            DecisionRecord(
                decision_uid=decision_uid,
                agent="test",
                step=1,
                station="saxs",
                target=target,
                scan=scan,
                seed=0,
                used=[],
                pending=[],
                acquisition={},
                model={},
                timing_s={},
                agent_state={},
            )
        ],
    )

    journal = Journal(client, campaign_id, record)
    journal.put(
        Entry(decision_uid, campaign_id, "saxs", "test", target, scan, EntryStatus.QUEUED, time.time())
    )
    journal.heartbeat({"state": "running"})
    journal.set_paused(True, by="test")
    return run_uid, decision_uid, claim.key


def test_the_writers_put_every_node_where_the_layout_says(
    tiled_client: Container, unique_campaign_id: str
) -> None:
    run_uid, _decision_uid, claim_key = _write_a_campaign(tiled_client, unique_campaign_id)

    # the root is shared with other tests: walk down from what this campaign wrote
    roots = (RAW, ANALYSED, ANALYSIS_CLAIMS, CAMPAIGNS)
    found: dict[str, Any] = {name: tiled_client[name] for name in roots}
    found[f"{RAW}/{run_uid}"] = tiled_client[RAW][run_uid]
    found[f"{ANALYSIS_CLAIMS}/{claim_key}"] = tiled_client[ANALYSIS_CLAIMS][claim_key]
    found[f"{ANALYSED}/{run_uid}"] = tiled_client[ANALYSED][run_uid]
    _walk(tiled_client[CAMPAIGNS][unique_campaign_id], [CAMPAIGNS, unique_campaign_id], found)

    seen: set[str] = set()
    for path, node in found.items():
        parts = [p for p in LAYOUT if _matches(_segments(p), path.split("/"))]
        assert len(parts) == 1, f"{path} is not in the layout, or in it twice: {parts}"
        (part,) = parts
        seen.add(part.path)
        if part.spec is not None:
            assert node.metadata.get("spec") == part.spec, path
    # the ledger and the journal share one node per campaign, and every part of the layout was written
    assert seen == {p.path for p in LAYOUT}
    assert "CatalogOfBlueskyRuns" in [spec.name for spec in found[RAW].specs]
