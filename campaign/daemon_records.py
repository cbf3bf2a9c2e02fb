"""The campaign's data as the agent daemon reads and writes it: analysed results in, finished samples out.

`CampaignResults` is the daemon's `ResultSource`: the campaign's analysed records in
Tiled, as its agent sees them, under the phase names phase finding gives them.
`LedgerRecorder` is its `SampleRecorder`: each finished sample written into the campaign
ledger, which `tandem campaign report` reads, as the in-process runner writes it.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tandem.agents.journal import Attempt, Entry
    from tandem.analysis.store import AnalysisRecord
    from tandem.campaign.config import Campaign
    from tandem.observations import Observation


#: a round reads the records analysed since the newest it has seen, less this much: the workers' clocks
#: (records carry their worker's time) may differ by as much, and a record whose fits finish later keeps
#: the time its node was made
RECENT_MARGIN_S = 120.0
#: and every this often it reads the campaign's records whole, whatever a worker's clock says
FULL_READ_EVERY_S = 600.0


class CampaignResults:
    """A campaign's analysed results as its agent sees them (absent components at zero, edges clipped),
    under the phase names phase finding gives them across the campaign (`tandem.campaign.phases`).

    Each call reads the metadata of the records analysed since the newest it has seen (less
    `RECENT_MARGIN_S`; the whole campaign's every `FULL_READ_EVERY_S`), so a round's reading does not
    grow with the campaign, and the curve of each run not seen before; phase events
    and the phases' state go to the campaign ledger. A renamed earlier run comes back with its new
    name: the daemon re-tells its agent.
    """

    def __init__(self, client: Any, campaign: Campaign) -> None:
        from tandem.analysis.store import AnalysisStore
        from tandem.campaign.ledger import Ledger
        from tandem.campaign.phases import CampaignPhases

        self.store = AnalysisStore(client)
        self.campaign = campaign
        ledger = Ledger.create(client, campaign.id, campaign.to_dict())
        self.phases = CampaignPhases(None, ledger.record_phases)
        self.phases.restore(dict(ledger.phase_state()))
        self._observations: dict[str, Observation] = {}
        self._newest_analysed_at: float | None = None
        self._full_read_at = -FULL_READ_EVERY_S  # monotonic s: the first call reads everything

    def observations(self, campaign_id: str) -> list[Observation]:
        from tandem.campaign.history import agent_observation

        records = self._records(campaign_id)
        new = []
        for r in records:
            if r.run_uid in self._observations:
                continue
            full = self.store.get(r.run_uid, with_curve=True) if r.ok else r
            record = full if full is not None else r
            new.append((record, agent_observation(self.campaign, record, record.finished_at_s)))
        for obs in self.phases.learn(new) if new else []:
            self._observations[obs.run_uid] = obs
        labels = self.phases.finding.labels
        for uid, obs in self._observations.items():
            name = labels.get(uid)
            if name is not None and obs.label != name:
                self._observations[uid] = replace(obs, label=name, label_probabilities={name: 1.0})
        return list(self._observations.values())

    def _records(self, campaign_id: str) -> list[AnalysisRecord]:
        since = None
        if self._newest_analysed_at is not None and time.monotonic() - self._full_read_at < FULL_READ_EVERY_S:
            since = self._newest_analysed_at - RECENT_MARGIN_S
        else:
            self._full_read_at = time.monotonic()
        records = self.store.records(campaign_id=campaign_id, with_curve=False, analysed_since=since)
        newest = max((r.analysed_at for r in records), default=None)
        if newest is not None and (self._newest_analysed_at is None or newest > self._newest_analysed_at):
            self._newest_analysed_at = newest
        return records


class LedgerRecorder:
    """Writes each sample the daemon finished into the campaign ledger, which `tandem campaign report` reads.

    The daemon's journal is per decision; the ledger is per sample, as the in-process
    runner writes it. A sample's station times are its run's start and stop, in
    wall-clock seconds since the campaign began (a real station has no other clock);
    without a closed run they are left out.
    """

    def __init__(self, client: Any, campaign: Campaign) -> None:
        from tandem.campaign.ledger import Ledger
        from tandem.catalog import Catalog

        self.ledger = Ledger.create(client, campaign.id, campaign.to_dict())
        self.catalog = Catalog(client)
        self.began = float(self.ledger.node.metadata.get("created", 0.0))

    def _run_times(self, run_uid: str | None) -> tuple[float | None, float | None]:
        from tandem.catalog import RunNotFoundError

        if run_uid is None:
            return None, None
        try:
            run = self.catalog.run(run_uid)
        except RunNotFoundError:
            return None, None
        stop = run.stop or {}
        end = stop.get("time")
        return run.time - self.began, None if end is None else float(end) - self.began

    def recorded(self) -> set[str]:
        return {str(key) for key in self.ledger.samples}

    def record(self, entry: Entry, attempt: Attempt) -> None:
        from tandem.campaign.ledger import LedgerEntry, SampleStatus

        start_s, end_s = self._run_times(attempt.run_uid)
        self.ledger.put(
            LedgerEntry(
                sample_uid=attempt.sample_uid,
                campaign_id=entry.campaign_id,
                station=entry.station,
                decision_uid=entry.decision_uid,
                target=dict(entry.target),
                scan=dict(entry.scan),
                status=SampleStatus.MEASURED if attempt.outcome == "completed" else SampleStatus.FAILED,
                run_uid=attempt.run_uid,
                reason=attempt.reason,
                start_s=start_s,
                end_s=end_s,
                decided_at=attempt.queued_at,
            )
        )
