"""When a campaign stops: the file's `stop:` criteria, decided in one place for both loops.

The in-process runner (`tandem.campaign.runner`) and the agent daemon (`tandem campaign` on queue
servers, `tandem.campaign.daemon_rules`) see a campaign differently (station clocks and a ledger;
queue items and a journal), so each counts its own `CampaignProgress`; what the numbers mean and
when they stop the campaign is decided here, so a campaign file stops at the same point whichever
loop runs it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tandem.campaign.config.schema import StopSpec

#: The map's confidence is not trusted to stop a campaign before this many samples: a model of a
#: handful of points is confidently wrong about everything it has not seen.
MIN_SAMPLES_FOR_CONFIDENCE = 10


@dataclass(frozen=True)
class CampaignProgress:
    """How far a campaign has gone, as its stop criteria measure it."""

    #: samples that spend the budget: measured or failed, or decided and running (a sample a stop
    #: cut off does not count; its decision runs again)
    samples: int
    #: station time spent, summed over the stations, in hours
    station_hours: float
    #: the latest samples that failed, one after another (0 when the last one did not fail)
    failures_in_a_row: int
    #: the reason the latest failed sample gave (None when `failures_in_a_row` is 0)
    last_failure: str | None
    #: the map's mean confidence now (the most likely label's probability, averaged over the grid);
    #: called only when the confidence criterion is due, since it costs a prediction
    confidence: Callable[[], float | None]


def budget_reason(stop: StopSpec, progress: CampaignProgress) -> str | None:
    """Why the campaign stops by what costs nothing to check: samples and beamtime spent."""
    if stop.max_samples is not None and progress.samples >= stop.max_samples:
        return f"sample budget reached ({stop.max_samples})"
    if stop.max_station_hours is not None and progress.station_hours >= stop.max_station_hours:
        return (
            f"beamtime budget reached ({progress.station_hours:.2f} of {stop.max_station_hours:g} "
            "station hours)"
        )
    return None


def failure_reason(stop: StopSpec, progress: CampaignProgress) -> str | None:
    """Why the campaign stops if its last `stop.max_consecutive_failures` samples all failed."""
    limit = stop.max_consecutive_failures
    if progress.failures_in_a_row < limit:
        return None
    return (
        f"{progress.failures_in_a_row} samples in a row failed (stop.max_consecutive_failures is "
        f"{limit}); the last failed with: {progress.last_failure}"
    )


def confidence_reason(stop: StopSpec, progress: CampaignProgress) -> str | None:
    """Why the campaign stops if the map's confidence reached `stop.target_confidence`."""
    goal = stop.target_confidence
    if goal is None or progress.samples < MIN_SAMPLES_FOR_CONFIDENCE:
        return None
    confidence = progress.confidence()
    if confidence is None or confidence < goal:
        return None
    return f"confidence target reached ({confidence:.3f} >= {goal:g})"


def stop_reason(stop: StopSpec, progress: CampaignProgress) -> str | None:
    """Why the campaign stops now, or None: budgets first, then failures, then the confidence."""
    return (
        budget_reason(stop, progress) or failure_reason(stop, progress) or confidence_reason(stop, progress)
    )


__all__ = [
    "MIN_SAMPLES_FOR_CONFIDENCE",
    "CampaignProgress",
    "budget_reason",
    "confidence_reason",
    "failure_reason",
    "stop_reason",
]
