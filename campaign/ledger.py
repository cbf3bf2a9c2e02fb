"""The campaign ledger in Tiled: one record per sample, from decision to result.

The ledger's nodes are where `tandem.catalog_layout` puts them (its docstring has the table)::

    campaigns/<campaign id>/  metadata: the campaign file (self-contained), created, tandem version
      samples/<sample uid>    metadata: station, decision uid, target, status, run uid,
                              station times, reason, the station's inventory after the sample
      decisions/              the agent's decision records (tandem.agents.records)
      phases/<seq>            phase events (tandem.analysis.phases); the phases' state in its metadata

A sample is written when it is decided (status `decided`) and updated when its
run ends (`measured` or `failed`). That is what lets a stopped campaign resume
without repeating or losing a sample: a decided sample without a result is run
again under the same sample uid; one whose run started but never closed is
recorded as `interrupted` (its sample went to waste, its run is closed with exit
status `abort`) and its decision is run again as a new sample. An interrupted
sample is not one of the campaign's samples: it spends no part of the budget.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from tandem.catalog_layout import (
    CONTAINER_SPECS,
    DECISIONS,
    PHASES,
    SAMPLES,
    TiledContainer,
    campaign_container,
    campaign_ids,
    campaign_node,
    create_or_replace_metadata,
    find_campaign,
)
from tandem.errors import TandemError

__all__ = [
    "INTERRUPTED_REASON",
    "CampaignNotFoundError",
    "Ledger",
    "LedgerEntry",
    "SampleStatus",
]


class SampleStatus(StrEnum):
    DECIDED = "decided"
    MEASURED = "measured"
    FAILED = "failed"
    #: cut off mid-run by a stop (a killed process); its decision was run again as a new sample
    INTERRUPTED = "interrupted"


#: the reason of a sample whose run a stop cut off
INTERRUPTED_REASON = "interrupted: the campaign was stopped"


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
    #: stock volumes (µL), tips used and wells taken on the station's deck after this sample
    inventory: Mapping[str, Any] = field(default_factory=dict)
    #: what the station did for this sample: [kind, start_s, end_s] in station time
    activities: tuple[tuple[str, float, float], ...] = ()
    #: the phase map's accuracy against the truth once this result was in (the twin only)
    accuracy: float | None = None
    #: station hours spent by the whole campaign when this sample finished
    campaign_station_hours: float | None = None
    #: wall-clock seconds of software work for this sample, by stage (plans, tiled, analysis, agent)
    timings_s: Mapping[str, float] = field(default_factory=dict)
    decided_at: float = field(default_factory=time.time)

    @property
    def done(self) -> bool:
        return self.status is not SampleStatus.DECIDED

    @property
    def counts(self) -> bool:
        """Whether the sample is one of the campaign's (its budget, its report): an interrupted one is not."""
        return self.status is not SampleStatus.INTERRUPTED

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status.value}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LedgerEntry:
        known = set(cls.__dataclass_fields__)
        values = {k: v for k, v in data.items() if k in known}
        values["status"] = SampleStatus(values.get("status", SampleStatus.DECIDED))
        if values["status"] is SampleStatus.FAILED and values.get("reason") == INTERRUPTED_REASON:
            values["status"] = SampleStatus.INTERRUPTED  # as ledgers before the status existed say it
        values["activities"] = tuple(
            (str(kind), float(start), float(end)) for kind, start, end in values.get("activities", ())
        )
        return cls(**values)


class CampaignNotFoundError(TandemError, LookupError):
    """The catalog holds no campaign of that id."""


class Ledger:
    """The ledger of one campaign in a Tiled catalog (`client` is the catalog root)."""

    def __init__(self, node: TiledContainer, campaign_id: str) -> None:
        self.node = node
        self.campaign_id = campaign_id
        self.samples = campaign_container(node, SAMPLES)
        self.decisions = campaign_container(node, DECISIONS)
        self.phases = campaign_container(node, PHASES)
        # the nodes `add` made, until their `update`: it writes through them without looking them up
        # (one request fewer per sample; a campaign completes each entry once)
        self._added: dict[str, TiledContainer] = {}

    @classmethod
    def create(cls, client: TiledContainer, campaign_id: str, campaign_record: Mapping[str, Any]) -> Ledger:
        """The campaign's ledger, made if the catalog does not hold it yet (safe with others making it)."""
        return cls(campaign_node(client, campaign_id, campaign_record), campaign_id)

    @classmethod
    def open(cls, client: TiledContainer, campaign_id: str) -> Ledger:
        """The ledger of a campaign the catalog holds, or a `CampaignNotFoundError` naming those it does."""
        node = find_campaign(client, campaign_id)
        if node is None:
            known = campaign_ids(client)
            raise CampaignNotFoundError(
                f"the catalog holds no campaign {campaign_id!r}; it holds: {', '.join(known) or 'none'}"
            )
        return cls(node, campaign_id)

    @property
    def campaign_record(self) -> Mapping[str, Any]:
        """The campaign file as it was when the campaign started (self-contained)."""
        record: Mapping[str, Any] = self.node.metadata.get("campaign", {})
        return record

    def add(self, entry: LedgerEntry) -> None:
        """Write a new entry; idempotent, so a write retried after a store outage cannot fail on itself."""
        node = create_or_replace_metadata(self.samples, entry.sample_uid, entry.to_dict())
        self._added[entry.sample_uid] = node

    def update(self, entry: LedgerEntry) -> None:
        node = self._added.pop(entry.sample_uid, None)
        if node is None:
            node = self.samples[entry.sample_uid]
        node.replace_metadata(metadata=entry.to_dict())

    def put(self, entry: LedgerEntry) -> None:
        """Add the entry, or replace it if the ledger holds it already (a writer that restarted)."""
        if entry.sample_uid in self.samples:
            self.update(entry)
        else:
            self.add(entry)

    def record_phases(self, events: Sequence[Mapping[str, Any]], state: Mapping[str, Any]) -> None:
        """Append phase events (each a dict with a `seq` number) and replace the phases' current state."""
        for event in events:
            # an event of this number may be there already: written by a process killed before it
            # recorded the state that counts it; the resumed campaign numbered on from that state
            create_or_replace_metadata(self.phases, f"{int(event['seq']):06d}", dict(event))
        self.phases.replace_metadata(metadata={"spec": CONTAINER_SPECS[PHASES], "state": dict(state)})

    def phase_state(self) -> Mapping[str, Any]:
        """The phases' state as last recorded (empty before the first)."""
        state: Mapping[str, Any] = self.phases.metadata.get("state") or {}
        return state

    def phase_events(self) -> list[dict[str, Any]]:
        """Every phase event of the campaign, in order."""
        return [dict(node.metadata) for _key, node in sorted(self.phases.items(), key=lambda item: item[0])]

    def entries(self) -> list[LedgerEntry]:
        """Every sample of the campaign, in the order they were decided."""
        out = [LedgerEntry.from_dict(node.metadata) for _key, node in self.samples.items()]
        return sorted(out, key=lambda e: e.decided_at)
