"""The campaign ledger on a real Tiled server: an entry the ledger added is completed without a lookup."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from tiled.client.container import Container

from tandem.campaign.ledger import Ledger, LedgerEntry, SampleStatus

pytestmark = pytest.mark.slow


class _Lookups:
    """The ledger's samples container, counting lookups of one child (each is an HTTP request)."""

    def __init__(self, container: Any) -> None:
        self.container = container
        self.lookups: list[str] = []

    def __getitem__(self, key: str) -> Any:
        self.lookups.append(key)
        return self.container[key]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.container, name)


def _entry(uid: str, campaign_id: str) -> LedgerEntry:
    return LedgerEntry(
        sample_uid=uid,
        campaign_id=campaign_id,
        station="saxs",
        decision_uid=f"decision-{uid}",
        target={"SDS": 0.05},
        scan={"exposure_s": 1.0},
        start_s=0.0,
    )


def test_an_added_entry_is_completed_without_looking_it_up(
    tiled_client: Container, unique_campaign_id: str
) -> None:
    ledger = Ledger.create(tiled_client, unique_campaign_id, {"id": unique_campaign_id})
    spy = _Lookups(ledger.samples)
    ledger.samples = spy
    ledger.add(_entry("a", unique_campaign_id))
    ledger.update(replace(_entry("a", unique_campaign_id), status=SampleStatus.MEASURED))
    assert spy.lookups == []
    [stored] = Ledger.open(tiled_client, unique_campaign_id).entries()
    assert stored.status is SampleStatus.MEASURED


def test_an_entry_added_elsewhere_is_looked_up(tiled_client: Container, unique_campaign_id: str) -> None:
    Ledger.create(tiled_client, unique_campaign_id, {"id": unique_campaign_id}).add(
        _entry("b", unique_campaign_id)
    )
    # another process (a resumed campaign) completes it
    ledger = Ledger.open(tiled_client, unique_campaign_id)
    spy = _Lookups(ledger.samples)
    ledger.samples = spy
    done = _entry("b", unique_campaign_id)
    ledger.update(replace(done, status=SampleStatus.FAILED, reason="interrupted"))
    assert spy.lookups == ["b"]
    [stored] = Ledger.open(tiled_client, unique_campaign_id).entries()
    assert stored.status is SampleStatus.FAILED
    assert stored.reason == "interrupted"
