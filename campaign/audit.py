"""An audit of a campaign's record in Tiled: nothing lost, nothing measured twice, nothing left open.

What a campaign promises however often it was killed and resumed (DESIGN.md: every link of the
chain is a record in Tiled), checked from the catalog alone, after the fact. The fault-injection
tests and `bench/bench_soak.py` hold a campaign to it; a scientist can too, before trusting a
campaign's report.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from tandem.campaign.ledger import Ledger, SampleStatus
from tandem.catalog import Catalog
from tandem.catalog_layout import TiledContainer
from tandem.run_documents import ExitStatus

SAMPLE_PLAN = "sample_plan"


@dataclass(frozen=True)
class CampaignAudit:
    """Counts from one campaign's ledger and runs; `problems` says what breaks a promise."""

    campaign_id: str
    #: the campaign's samples (measured or failed): what its budget counts
    samples: int
    measured: int
    failed: int
    #: samples a stop cut off mid-run, their decisions run again (not among `samples`)
    interrupted: int
    #: decided samples without a result (a campaign that is not running should have none)
    undecided: int
    #: measured samples whose successful run the catalog does not hold
    lost: int
    #: samples with more than one successful run, or decisions measured more than once
    repeated: int
    #: successful sample runs that are none of the campaign's samples (not in the ledger, or interrupted)
    unaccounted: int
    #: runs still open (no stop document), and aborted runs that do not say why
    runs_open: int
    aborted_without_reason: int
    #: the sample budget of the campaign file, and how far past it the campaign went
    budget: int | None
    over_budget: int

    @property
    def problems(self) -> list[str]:
        checks = {
            "undecided": "decided samples have no result",
            "lost": "measured samples have no run in the catalog",
            "repeated": "samples or decisions were measured more than once",
            "unaccounted": "successful runs are not in the ledger",
            "runs_open": "runs were left open",
            "aborted_without_reason": "aborted runs do not say why",
            "over_budget": "samples beyond the budget",
        }
        return [f"{getattr(self, key)} {text}" for key, text in checks.items() if getattr(self, key)]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"problems": self.problems}


def audit_campaign(client: TiledContainer, campaign_id: str) -> CampaignAudit:
    """Audit `campaign_id` in the catalog of `client` (its root)."""
    ledger = Ledger.open(client, campaign_id)
    entries = ledger.entries()
    counted = [e for e in entries if e.done and e.counts]
    measured = {e.sample_uid for e in counted if e.status is SampleStatus.MEASURED}
    runs = Catalog(client).runs(campaign_id=campaign_id)
    succeeded = Counter(r.sample_uid for r in runs if r.plan_name == SAMPLE_PLAN and r.succeeded)
    decisions = Counter(e.decision_uid for e in counted if e.status is SampleStatus.MEASURED)
    budget = (ledger.campaign_record.get("stop") or {}).get("max_samples")
    return CampaignAudit(
        campaign_id=campaign_id,
        samples=len(counted),
        measured=len(measured),
        failed=len(counted) - len(measured),
        interrupted=sum(e.status is SampleStatus.INTERRUPTED for e in entries),
        undecided=sum(not e.done for e in entries),
        lost=sum(1 for uid in measured if succeeded[uid] == 0),
        repeated=sum(n > 1 for n in succeeded.values()) + sum(n > 1 for n in decisions.values()),
        unaccounted=sum(1 for uid in succeeded if uid not in {e.sample_uid for e in counted}),
        runs_open=sum(not r.is_closed for r in runs),
        aborted_without_reason=sum(r.exit_status is ExitStatus.ABORT and not r.reason for r in runs),
        budget=budget,
        over_budget=max(0, len(counted) - budget) if budget is not None else 0,
    )
