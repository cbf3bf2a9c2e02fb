"""A daemon's round reads the records analysed since the last round, not the whole campaign (issue 16)."""

from __future__ import annotations

from typing import Any

import pytest
from tiled.client.container import Container

from tandem.analysis.store import AnalysisRecord, AnalysisStore
from tandem.campaign import daemon_records, load_campaign
from tandem.campaign.bundled import DEMO_CAMPAIGN
from tandem.campaign.daemon_records import FULL_READ_EVERY_S, RECENT_MARGIN_S, CampaignResults
from tandem.observations import AnalysisStatus


def put(client: Container, campaign_id: str, analysed_at: float) -> str:
    """A complete, failed record (no curve to label), analysed at `analysed_at` by its worker's clock."""
    uid = f"run-{analysed_at:g}-{campaign_id}"
    AnalysisStore(client).put(
        AnalysisRecord(
            run_uid=uid,
            status=AnalysisStatus.FAILED,
            analysis_version="test",
            parameters={},
            campaign_id=campaign_id,
            station="saxs",
            failure_code="test",
            failure_reason="a record to read",
            analysed_at=analysed_at,
        )
    )
    return uid


def test_records_analysed_since_are_filtered_by_the_server(
    tiled_client: Container, unique_campaign_id: str
) -> None:
    uids = [put(tiled_client, unique_campaign_id, t) for t in (1000.0, 2000.0, 3000.0)]
    store = AnalysisStore(tiled_client)
    assert [r.run_uid for r in store.records(campaign_id=unique_campaign_id, analysed_since=2000.0)] == uids[
        1:
    ]
    assert [r.run_uid for r in store.records(campaign_id=unique_campaign_id)] == uids


def test_a_round_reads_only_what_is_recent_and_now_and_then_the_whole_campaign(
    tiled_client: Container, unique_campaign_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign = load_campaign(DEMO_CAMPAIGN)
    campaign = type(campaign)(
        **{**vars(campaign), "spec": campaign.spec.model_copy(update={"id": unique_campaign_id})}
    )
    results = CampaignResults(tiled_client, campaign)
    asked: list[Any] = []
    records = results.store.records

    def spy(**kwargs: Any) -> list[AnalysisRecord]:
        asked.append(kwargs.get("analysed_since"))
        return records(**kwargs)

    monkeypatch.setattr(results.store, "records", spy)
    clock = [10_000.0]
    monkeypatch.setattr(daemon_records.time, "monotonic", lambda: clock[0])

    first = put(tiled_client, unique_campaign_id, 5000.0)
    assert [o.run_uid for o in results.observations(unique_campaign_id)] == [first]
    assert asked == [None]  # the first round reads the campaign whole

    later = put(tiled_client, unique_campaign_id, 5010.0)
    # a worker whose clock runs far behind: its record falls before the window
    behind = put(tiled_client, unique_campaign_id, 5000.0 - 10 * RECENT_MARGIN_S)
    assert [o.run_uid for o in results.observations(unique_campaign_id)] == [first, later]
    assert asked[-1] == 5000.0 - RECENT_MARGIN_S

    clock[0] += FULL_READ_EVERY_S  # the next whole read finds it
    assert {o.run_uid for o in results.observations(unique_campaign_id)} == {first, later, behind}
    assert asked[-1] is None
