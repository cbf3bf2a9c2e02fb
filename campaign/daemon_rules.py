"""The campaign's rules as the agent daemon applies them: what may be queued, the plan call, when to stop.

`campaign_validator` checks each suggestion against the campaign file before it is
queued (station, bounds, constraints, scan limits, stocks on the deck);
`sample_request` turns a suggestion into its `tandem.sample_request.SampleRequest` (the
in-process runner takes its requests from here too, so both make a sample alike) and
`sample_plan_request` into the `sample_plan` item of its station's queue server;
`stop_criteria` are the campaign's stop section as the daemon checks it before each new
suggestion.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from tandem.agents.station_queue import PlanRequest
from tandem.campaign.stop_rules import CampaignProgress, stop_reason
from tandem.sample_request import SampleRequest, SampleSettings
from tandem.stations import device_names

if TYPE_CHECKING:
    from tandem.agents.daemon import Progress, StopCriterion, Validator
    from tandem.campaign.config import Campaign
    from tandem.suggestions import Suggestion


def campaign_validator(campaign: Campaign) -> Validator:
    """Check a suggestion against the campaign: station, bounds, constraints, scan limits, stocks."""
    from tandem.campaign.agent_factory import stock_check

    stocks = stock_check(campaign)
    tolerance = campaign.space.tolerance

    def composition(suggestion: Suggestion) -> str | None:
        fractions = {n: suggestion.target.mass_fraction(n) for n in campaign.solutes}
        for name, (lo, hi) in campaign.space.bounds.items():
            value = fractions[name]
            if not (math.isfinite(value) and lo - tolerance <= value <= hi + tolerance):
                return f"{name} = {value:.4g} lies outside its bounds [{lo:g}, {hi:g}]"
        return campaign.constraint_violation(fractions)

    def scan(suggestion: Suggestion) -> str | None:
        station, scan = campaign.stations[suggestion.station], suggestion.scan
        lo_s, hi_s = station.exposure_range_s
        t_lo, t_hi = station.instrument.temperature_limits_c
        if not lo_s <= scan.exposure_s <= hi_s:
            return f"exposure {scan.exposure_s:g} s is outside {station.id}'s [{lo_s:g}, {hi_s:g}] s"
        if scan.configuration not in station.configurations:
            allowed = ", ".join(station.configurations)
            return f"configuration {scan.configuration!r} is not allowed at {station.id} ({allowed})"
        if scan.temperature_c is not None and not t_lo <= scan.temperature_c <= t_hi:
            return f"{scan.temperature_c:g} °C is outside {station.id}'s [{t_lo:g}, {t_hi:g}] °C"
        return None

    def validate(suggestion: Suggestion) -> str | None:
        if suggestion.station not in campaign.stations:
            return f"station {suggestion.station!r} is not in the campaign ({', '.join(campaign.stations)})"
        return composition(suggestion) or scan(suggestion) or stocks(suggestion.station, suggestion.target)

    return validate


def sample_settings(campaign: Campaign) -> dict[str, SampleSettings]:
    """What each station of the campaign gives every sample made there: its solvent, its sample volume."""
    return {
        sid: SampleSettings(balance=station.solvent.name, sample_volume_ul=station.spec.sample_volume_ul)
        for sid, station in campaign.stations.items()
    }


def sample_request(
    campaign: Campaign, suggestion: Suggestion, sample_uid: str, *, measure_empty_cell: bool = True
) -> SampleRequest:
    """The campaign's request for a suggestion's sample (the in-process runner's as well as the daemon's)."""
    return SampleRequest.from_suggestion(
        suggestion,
        sample_settings(campaign),
        sample_uid=sample_uid,
        campaign_id=campaign.id,
        measure_empty_cell=measure_empty_cell,
    )


def sample_plan_request(campaign: Campaign, suggestion: Suggestion, sample_uid: str) -> PlanRequest:
    """The `sample_plan` item for a suggestion: this station's devices by name, JSON arguments only.

    The sample plan measures the empty cell itself: nothing else on a queue server does.
    """
    request = sample_request(campaign, suggestion, sample_uid)
    return PlanRequest("sample_plan", tuple(device_names(request.station)), request.to_plan_kwargs())


def stop_criteria(campaign: Campaign) -> list[StopCriterion]:
    """The campaign's stop criteria, as the daemon checks them before each new suggestion.

    `tandem.campaign.stop_rules` decides, as it does for the in-process runner; the daemon counts
    a decision queued or running as spending the budget (it must not queue past it), and a
    station's hours as the station time of its latest finished sample.
    """
    stop = campaign.stop
    # the grid is built only when the confidence criterion can use it
    grid = campaign.grid() if stop.target_confidence is not None else None

    def rules(p: Progress) -> str | None:
        def confidence() -> float | None:
            if grid is None or not p.observations:
                return None
            prediction = p.agent.predict(grid)
            if prediction.probabilities is None or not len(prediction.probabilities):
                return None
            return float(prediction.probabilities.max(axis=1).mean())

        spent: dict[str, float] = {}
        for o in p.observations:
            if o.finished_at_s is not None:
                spent[o.station] = max(spent.get(o.station, 0.0), o.finished_at_s)
        progress = CampaignProgress(
            samples=p.measured + p.failed + p.open,
            station_hours=sum(spent.values()) / 3600,
            failures_in_a_row=p.failures_in_a_row,
            last_failure=p.last_failure,
            confidence=confidence,
        )
        return stop_reason(stop, progress)

    return [rules]
