"""The campaign ledger in Tiled: one record per sample, from decision to result.

Layout (a sibling of `raw` and `analysed`)::

    campaigns/
      <campaign id>/          metadata: the campaign file (self-contained), created, tandem version
        samples/
          <sample uid>/       metadata: station, decision uid, target, status, run uid,
                              station times, reason, the station's inventory after the sample
        decisions/
          <decision uid>/     the agent's decision record (tandem.agents.records)

A sample is written when it is decided (status `decided`) and updated when its
run ends (`measured` or `failed`). That is what lets a stopped campaign resume
without repeating or losing a sample: a decided sample without a result is run
again under the same sample uid; one whose run started but never closed is
recorded as failed (its sample went to waste) and its decision is run again as
a new sample.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

from tiled.queries import Key

import tandem

CAMPAIGNS = "campaigns"
SAMPLES = "samples"
DECISIONS = "decisions"


class SampleStatus(StrEnum):
    DECIDED = "decided"
    MEASURED = "measured"
    FAILED = "failed"


@dataclass(frozen=True)
class LedgerEntry:
    """What the campaign knows about one sample."""

    sample_uid: str
    campaign_id: str
    station: str
    decision_uid: str
    target: Mapping[str, float]
    scan: Mapping[str, Any]
    status: SampleStatus = SampleStatus.DECIDED
    run_uid: str | None = None
    start_s: float | None = None
    end_s: float | None = None
    reason: str | None = None
    #: stock volumes (µL) and tips used on the station's deck after this sample
    inventory: Mapping[str, Any] = field(default_factory=dict)
    decided_at: float = field(default_factory=time.time)

    @property
    def done(self) -> bool:
        return self.status is not SampleStatus.DECIDED

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status.value}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LedgerEntry:
        known = set(cls.__dataclass_fields__)
        values = {k: v for k, v in data.items() if k in known}
        values["status"] = SampleStatus(values.get("status", SampleStatus.DECIDED))
        return cls(**values)


class Ledger:
    """The ledger of one campaign in a Tiled catalog (`client` is the catalog root)."""

    def __init__(self, client: Any, campaign_id: str, campaign_record: Mapping[str, Any]) -> None:
        campaigns = _child(client, CAMPAIGNS, {"spec": "tandem-campaigns"})
        self.node = _child(
            campaigns,
            campaign_id,
            {
                "spec": "tandem-campaign",
                "campaign_id": campaign_id,
                "campaign": dict(campaign_record),
                "created": time.time(),
                "tandem_version": tandem.__version__,
            },
        )
        self.samples = _child(self.node, SAMPLES, {"spec": "tandem-samples"})
        self.decisions = _child(self.node, DECISIONS, {"spec": "tandem-decisions"})
        self.campaign_id = campaign_id

    @classmethod
    def existing(cls, client: Any, campaign_id: str) -> Mapping[str, Any] | None:
        """The recorded campaign file of `campaign_id`, or None if the catalog has no such campaign."""
        if CAMPAIGNS not in client or campaign_id not in client[CAMPAIGNS]:
            return None
        record: Mapping[str, Any] = client[CAMPAIGNS][campaign_id].metadata.get("campaign", {})
        return record

    def add(self, entry: LedgerEntry) -> None:
        self.samples.create_container(key=entry.sample_uid, metadata=entry.to_dict())

    def update(self, entry: LedgerEntry) -> None:
        self.samples[entry.sample_uid].replace_metadata(metadata=entry.to_dict())

    def entries(self) -> list[LedgerEntry]:
        """Every sample of the campaign, in the order they were decided."""
        out = [LedgerEntry.from_dict(node.metadata) for _key, node in self._items()]
        return sorted(out, key=lambda e: e.decided_at)

    def pending(self) -> list[LedgerEntry]:
        return [e for e in self.entries() if not e.done]

    def _items(self) -> Iterator[tuple[str, Any]]:
        yield from self.samples.items()

    def finished(self, entry: LedgerEntry, **changes: Any) -> LedgerEntry:
        done = replace(entry, **changes)
        self.update(done)
        return done

    def by_status(self, status: SampleStatus) -> list[LedgerEntry]:
        node = self.samples.search(Key("status") == status.value)
        return [LedgerEntry.from_dict(n.metadata) for _k, n in node.items()]


def _child(parent: Any, key: str, metadata: Mapping[str, Any]) -> Any:
    if key in parent:
        return parent[key]
    return parent.create_container(key=key, metadata=dict(metadata))
