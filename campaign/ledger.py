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

import httpx

import tandem
from tandem.errors import TandemError

CAMPAIGNS = "campaigns"
SAMPLES = "samples"
DECISIONS = "decisions"
#: the phase events of a campaign (merges, splits, moves: `tandem.analysis.phases`) and its names
PHASES = "phases"


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

    def __init__(self, node: Any, campaign_id: str) -> None:
        self.node = node
        self.campaign_id = campaign_id
        self.samples = _child(node, SAMPLES, {"spec": "tandem-samples"})
        self.decisions = _child(node, DECISIONS, {"spec": "tandem-decisions"})
        self.phases = _child(node, PHASES, {"spec": "tandem-phases"})
        # the nodes `add` made, until their `update`: it writes through them without looking them up
        # (one request fewer per sample; a campaign completes each entry once)
        self._added: dict[str, Any] = {}

    @classmethod
    def create(cls, client: Any, campaign_id: str, campaign_record: Mapping[str, Any]) -> Ledger:
        """The campaign's ledger, made if the catalog does not hold it yet."""
        campaigns = _child(client, CAMPAIGNS, {"spec": "tandem-campaigns"})
        node = _child(
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
        return cls(node, campaign_id)

    @classmethod
    def open(cls, client: Any, campaign_id: str) -> Ledger:
        """The ledger of a campaign the catalog holds, or a `CampaignNotFoundError` naming those it does."""
        known = list(client[CAMPAIGNS]) if CAMPAIGNS in client else []
        if campaign_id not in known:
            raise CampaignNotFoundError(
                f"the catalog holds no campaign {campaign_id!r}; it holds: {', '.join(known) or 'none'}"
            )
        return cls(client[CAMPAIGNS][campaign_id], campaign_id)

    @property
    def campaign_record(self) -> Mapping[str, Any]:
        """The campaign file as it was when the campaign started (self-contained)."""
        record: Mapping[str, Any] = self.node.metadata.get("campaign", {})
        return record

    def add(self, entry: LedgerEntry) -> None:
        """Write a new entry; idempotent, so a write retried after a store outage cannot fail on itself."""
        self._added[entry.sample_uid] = _create_or_replace(self.samples, entry.sample_uid, entry.to_dict())

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
            _create_or_replace(self.phases, f"{int(event['seq']):06d}", dict(event))
        self.phases.replace_metadata(metadata={"spec": "tandem-phases", "state": dict(state)})

    def phase_state(self) -> Mapping[str, Any]:
        """The phases' state as last recorded (empty before the first)."""
        state: Mapping[str, Any] = self.phases.metadata.get("state") or {}
        return state

    def phase_events(self) -> list[dict[str, Any]]:
        """Every phase event of the campaign, in order."""
        return [dict(node.metadata) for _key, node in sorted(self.phases.items())]

    def entries(self) -> list[LedgerEntry]:
        """Every sample of the campaign, in the order they were decided."""
        out = [LedgerEntry.from_dict(node.metadata) for _key, node in self.samples.items()]
        return sorted(out, key=lambda e: e.decided_at)


def _create_or_replace(parent: Any, key: str, metadata: Mapping[str, Any]) -> Any:
    """The child `key` of `parent` with `metadata`: created, or its metadata replaced if it exists."""
    try:
        return parent.create_container(key=key, metadata=dict(metadata))
    except httpx.HTTPStatusError as exc:
        if exc.response.status_code != httpx.codes.CONFLICT:
            raise
    node = parent[key]
    node.replace_metadata(metadata=dict(metadata))
    return node


def _child(parent: Any, key: str, metadata: Mapping[str, Any]) -> Any:
    if key in parent:
        return parent[key]
    return parent.create_container(key=key, metadata=dict(metadata))
