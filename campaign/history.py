"""A campaign's history read back from Tiled: what the report shows.

Both the end of `tandem campaign run` and `tandem campaign report CAMPAIGN` build the report
from here, from the catalog alone (ledger, analysed nodes, decision records), so
a report rebuilt later shows exactly what the campaign recorded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from tandem.agents.protocol import Agent
from tandem.analysis.store import AnalysisRecord, AnalysisStore
from tandem.campaign.agent_factory import build_agent
from tandem.campaign.config import Campaign, load_campaign_data
from tandem.campaign.config.profiles import on_twin
from tandem.campaign.ledger import Ledger, LedgerEntry, SampleStatus
from tandem.campaign.phases import CampaignPhases
from tandem.campaign.report_data import (
    AccuracyPoint,
    Activity,
    CampaignHistory,
    MeasuredCurve,
    Measurement,
    PhaseMap,
)
from tandem.catalog_layout import TiledContainer
from tandem.observations import Observation
from tandem.stations import Probe


def campaign_from_catalog(client: TiledContainer, campaign_id: str) -> tuple[Campaign, Ledger]:
    """The campaign as it was recorded when it started, and its ledger."""
    ledger = Ledger.open(client, campaign_id)
    return load_campaign_data(ledger.campaign_record, source=f"catalog:{campaign_id}"), ledger


#: a realized composition this far outside the bounds (share of each bound's range) is pipetting
#: error around a target on the edge, and is modelled at the nearest point inside
EDGE_SLACK = 0.02


def agent_observation(campaign: Campaign, record: AnalysisRecord, finished_at_s: float | None) -> Observation:
    """The agent's view of an analysed record.

    A component the recipe did not use is there at zero; a sample pipetted just past
    the edge of the space (a target on the bounds plus pipetting error) is modelled on
    the edge. Anything farther out is left as it is, for the agent to refuse.
    """
    observation = record.to_observation()
    composition = {}
    for name in campaign.solutes:
        value = float(observation.composition.get(name, 0.0))
        lower, upper = campaign.space.bounds[name]
        slack = EDGE_SLACK * (upper - lower)
        if upper < value <= upper + slack:
            value = upper
        elif lower - slack <= value < lower:
            value = lower
        composition[name] = value
    return replace(observation, composition=composition, finished_at_s=finished_at_s)


def results_of(
    campaign: Campaign, entries: Sequence[LedgerEntry], records: Mapping[str, AnalysisRecord]
) -> list[tuple[AnalysisRecord, Observation]]:
    """The analysed results of the measured samples, each with the agent's view of it, in ledger order."""
    out = []
    for entry in entries:
        record = records.get(entry.run_uid or "")
        if entry.status is SampleStatus.MEASURED and record is not None and record.ok:
            out.append((record, agent_observation(campaign, record, entry.end_s)))
    return out


def relearn(
    campaign: Campaign, agent: Agent, ledger: Ledger, results: Sequence[tuple[AnalysisRecord, Observation]]
) -> CampaignPhases:
    """Tell a rebuilt `agent` a campaign's results under the phase names the campaign recorded.

    Phase finding runs again over the curves; the names the ledger recorded are kept
    (`PhaseFinder.restore`), and nothing is written back.
    """
    phases = CampaignPhases(agent, lambda _events, _state: None)
    phases.restore(dict(ledger.phase_state()))
    agent.tell(phases.learn(results))
    return phases


def build_history(
    client: TiledContainer,
    campaign_id: str,
    *,
    agent: Agent | None = None,
    truth_labels: Sequence[str] | None = None,
) -> CampaignHistory:
    """Read a campaign's history from the catalog.

    `agent` is the campaign's live agent (the end of a run); without one, the
    agent is rebuilt from the campaign file and told every analysed result.
    """
    campaign, ledger = campaign_from_catalog(client, campaign_id)
    done = [e for e in ledger.entries() if e.done]
    entries = [e for e in done if e.counts]  # a sample a stop cut off is not one: it was run again
    store = AnalysisStore(client)
    records = {r.run_uid: r for r in store.records(campaign_id=campaign_id)}
    if agent is None:
        agent = build_agent(campaign)
    phase_of = relearn(campaign, agent, ledger, results_of(campaign, entries, records)).finding.labels
    grid = campaign.grid()
    if truth_labels is None:
        truth_labels = truth_on(campaign, grid)
    prediction = agent.predict(grid)
    predicted = None
    if prediction.probabilities is not None and prediction.probabilities.size:
        predicted = PhaseMap(
            names=campaign.solutes,
            compositions=grid,
            labels=tuple(prediction.most_likely()),
            probabilities=np.max(prediction.probabilities, axis=1),
        )
    measurements, curves, activities, accuracy = [], [], [], []
    for n, entry in enumerate(entries, start=1):
        record = records.get(entry.run_uid or "")
        ok = entry.status is SampleStatus.MEASURED and record is not None and record.ok
        composition = dict(record.composition) if record is not None else dict(entry.target)
        measurements.append(
            Measurement(
                sample_uid=entry.sample_uid,
                station=entry.station,
                composition={k: float(composition.get(k, 0.0)) for k in campaign.solutes},
                label=phase_of.get(record.run_uid, record.label) if ok and record is not None else None,
                exposure_s=float(entry.scan.get("exposure_s", float("nan"))),
                start_s=entry.start_s or 0.0,
                end_s=entry.end_s or 0.0,
                status="ok" if ok else "failed",
                decision_uid=entry.decision_uid,
            )
        )
        if ok and record is not None and record.curve is not None:
            curves.append(
                MeasuredCurve(
                    entry.sample_uid,
                    entry.station,
                    np.asarray(record.curve.q_inv_a),
                    np.asarray(record.curve.intensity_per_cm),
                    phase_of.get(record.run_uid, record.label),
                )
            )
        activities += [
            Activity(entry.station, kind, a, b, entry.sample_uid) for kind, a, b in entry.activities
        ]
        if entry.accuracy is not None:
            accuracy.append(AccuracyPoint(n, entry.campaign_station_hours or 0.0, entry.accuracy))
    return CampaignHistory(
        campaign_id=campaign.id,
        names=campaign.solutes,
        stations=tuple(campaign.stations),
        measurements=tuple(measurements),
        predicted=predicted,
        truth=tuple(truth_labels) if truth_labels is not None and predicted is not None else None,
        accuracy=tuple(accuracy),
        curves=tuple(curves),
        activities=tuple(activities),
        title=campaign.name,
        phases=_phases(campaign),
        interrupted=len(done) - len(entries),
        metadata={
            "agent": campaign.agent.kind,
            "agent_seed": campaign.agent.seed,
            "twin_truth": campaign.twin.truth,
            "stations": {sid: s.probe.value for sid, s in campaign.stations.items()},
        },
    )


def truth_on(campaign: Campaign, grid: np.ndarray) -> list[str] | None:
    """The twin's phase at each grid point, as the probe that sees every phase (neutrons if any)."""
    if not _on_twin(campaign):
        return None  # real stations: there is no truth, and the twin is not imported to look for one
    try:
        truth = campaign.truth()
    except Exception:  # a campaign at a real beamline has no truth
        return None
    probes = {s.probe for s in campaign.stations.values()}
    probe = Probe.NEUTRON if Probe.NEUTRON in probes else Probe.XRAY
    names = campaign.solutes
    return [truth(dict(zip(names, map(float, row), strict=True)), probe).phase for row in grid]


def _phases(campaign: Campaign) -> tuple[str, ...]:
    """The truth's phase names, for stable colours (the default system knows its own)."""
    if not _on_twin(campaign):
        return ()
    from tandem.campaign.config.twin import twin_phase_names

    return twin_phase_names(campaign.twin.truth)


def _on_twin(campaign: Campaign) -> bool:
    """Whether every station ran on the twin (a campaign on real stations has no truth)."""
    return all(on_twin(s.instrument) for s in campaign.stations.values())
