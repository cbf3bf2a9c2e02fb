"""The campaign's rules as the agent daemon applies them: what may be queued, the plan call, when to stop.

`campaign_validator` checks each suggestion against the campaign file before it is
queued (station, bounds, constraints, scan limits, stocks on the deck);
`sample_plan_request` turns a suggestion into the `sample_plan` item of its station's
queue server; `stop_criteria` are the campaign's stop section as the daemon checks it
before each new suggestion.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from tandem.agents.station_queue import PlanRequest

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


def sample_plan_request(campaign: Campaign, suggestion: Suggestion, sample_uid: str) -> PlanRequest:
    """The `sample_plan` item for a suggestion: this station's devices by name, JSON arguments only."""
    sid = suggestion.station
    station = campaign.stations[sid]
    target = {n: float(suggestion.target.mass_fraction(n)) for n in campaign.solutes}
    volume = float(station.spec.sample_volume_ul)
    scan = suggestion.scan
    return PlanRequest(
        "sample_plan",
        (sid, f"{sid}_liquid_handler", f"{sid}_cell_loader", target, float(scan.exposure_s)),
        {
            "configuration": scan.configuration,
            "temperature_c": scan.temperature_c,
            "n_frames": int(scan.n_frames),
            "balance": station.solvent.name,
            "campaign_id": campaign.id,
            "decision_uid": suggestion.decision_uid,
            "sample_uid": sample_uid,
            "total_volume_ul": volume,
            "load_volume_ul": volume / 2,
        },
    )


def stop_criteria(campaign: Campaign) -> list[StopCriterion]:
    """The campaign's stop criteria, as the daemon checks them before each new suggestion."""
    stop = campaign.stop
    out: list[StopCriterion] = []
    if stop.max_samples is not None:
        budget = stop.max_samples

        def samples(p: Progress) -> str | None:
            return f"sample budget reached ({budget})" if p.measured + p.open >= budget else None

        out.append(samples)
    if stop.max_station_hours is not None:
        hours = stop.max_station_hours

        def beamtime(p: Progress) -> str | None:
            spent: dict[str, float] = {}
            for o in p.observations:
                if o.finished_at_s is not None:
                    spent[o.station] = max(spent.get(o.station, 0.0), o.finished_at_s)
            total = sum(spent.values()) / 3600
            return f"beamtime budget reached ({total:.1f} of {hours:g} h)" if total >= hours else None

        out.append(beamtime)
    if stop.target_confidence is not None:
        goal = stop.target_confidence
        grid = campaign.grid()

        def confidence(p: Progress) -> str | None:
            if not p.observations:
                return None
            prediction = p.agent.predict(grid)
            if prediction.probabilities is None or not len(prediction.probabilities):
                return None
            mean = float(prediction.probabilities.max(axis=1).mean())
            return f"map confidence {mean:.3f} reached the target {goal:g}" if mean >= goal else None

        out.append(confidence)
    return out
