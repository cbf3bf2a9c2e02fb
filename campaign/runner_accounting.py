"""What a campaign in the loop has spent and what it shows: counts, budgets, stop criteria, progress.

The loop asks here, before each decision, whether the campaign stops (a budget
spent, every station set aside, failures in a row, the confidence target), and
after each sample, whether its map accuracy is due and what the live display
shows; it tells here how each station's sample went (the station breaker sets
aside a station whose samples keep failing). Also here: the wall-clock seconds of
the loop's own work by stage, a station's clock intervals grouped into the
activities its ledger entry keeps, and what a campaign run leaves behind (`Outcome`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from tandem.agents.protocol import Agent, Prediction
from tandem.breaker import StationBreaker
from tandem.campaign.config import Campaign
from tandem.campaign.ledger import LedgerEntry, SampleStatus
from tandem.campaign.metrics import phase_map_accuracy
from tandem.campaign.station_rig import StationRig
from tandem.campaign.stop_rules import (
    CampaignProgress,
    budget_reason,
    confidence_reason,
    failure_reason,
)
from tandem.stations import Interval

logger = logging.getLogger(__name__)

#: The live map accuracy is a prediction on the whole report grid, whose cost grows with the square of
#: the results learnt from (0.1 s at 40 samples, 0.5 s at 100 on two busy cores). By default the n-th
#: sample records it when n is a multiple of n // this (every sample up to twice this, then every
#: second, third, ...: the accuracy curve keeps a resolution of a twentieth of the campaign and its
#: cost grows only in proportion to n), and so does the sample that spends the sample or beamtime
#: budget or during which the user stopped the campaign.
ACCURACY_EVERY_SAMPLE_UP_TO = 20


class StageTimer:
    """Wall-clock seconds of the loop's own work by stage, for the sample in progress."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    @contextlib.contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - started)

    def take(self) -> dict[str, float]:
        """The seconds so far, and start afresh."""
        out, self.seconds = self.seconds, {}
        return out


@dataclass(frozen=True)
class Progress:
    """A snapshot for the live display, after each sample.

    Samples are counted once they are durable: their run, analysed node and ledger entry are in Tiled,
    so a sample shown as done is one a killed campaign does not measure again.
    """

    samples_by_station: Mapping[str, int]
    #: failed samples among those counted (one cut off by a stop is not a sample: it is run again)
    failed: int
    station_time_s: Mapping[str, float]
    busy_s: Mapping[str, float]
    #: the latest map accuracy (computed every few samples, see `CampaignRunner`), None before the first
    accuracy: float | None
    budget_samples: int | None
    #: samples whose run is over and whose results are still on their way to Tiled
    in_flight: int = 0
    #: stations set aside because their samples kept failing (see `tandem.breaker`)
    set_aside: tuple[str, ...] = ()

    @property
    def samples(self) -> int:
        return sum(self.samples_by_station.values())

    @property
    def beamtime_h(self) -> float:
        return sum(self.busy_s.values()) / 3600.0

    def utilisation(self, station: str) -> float:
        horizon = max(self.station_time_s.values(), default=0.0)
        return self.busy_s.get(station, 0.0) / horizon if horizon > 0 else 0.0


@dataclass
class Outcome:
    """What a campaign run leaves behind."""

    campaign_id: str
    entries: list[LedgerEntry]
    stop_reason: str = ""
    #: the campaign stopped because `stop.max_consecutive_failures` samples in a row failed
    stopped_on_failures: bool = False
    #: wall-clock seconds of the loop, from its first decision until every result was in Tiled
    loop_s: float = 0.0
    #: stations set aside during the campaign, with why (`tandem.breaker.StationHealth.to_dict`)
    set_aside: dict[str, dict[str, object]] = field(default_factory=dict)


def accuracy_due(n_samples: int, every: int | None = None) -> bool:
    """Whether the map accuracy is recorded with the `n_samples`-th sample: every `every`-th, or by
    default when n is a multiple of n // `ACCURACY_EVERY_SAMPLE_UP_TO`."""
    step = every or max(1, n_samples // ACCURACY_EVERY_SAMPLE_UP_TO)
    return n_samples % step == 0


#: how a station's clock activities group on the timeline
_ACTIVITY_KINDS = (("liquid_handler", "prepare"), ("load", "load"), ("rinse", "rinse"), ("expose", "measure"))


def activities(intervals: Sequence[Interval]) -> tuple[tuple[str, float, float], ...]:
    """The station's intervals grouped into runs of one kind (prepare, load, measure, rinse, set up)."""
    out: list[tuple[str, float, float]] = []
    for interval in intervals:
        kind = next((k for prefix, k in _ACTIVITY_KINDS if interval.activity.startswith(prefix)), "set up")
        if out and out[-1][0] == kind and abs(out[-1][2] - interval.start_s) < 1e-9:
            out[-1] = (kind, out[-1][1], interval.end_s)
        else:
            out.append((kind, interval.start_s, interval.end_s))
    return tuple(out)


class MapPrediction:
    """The agent's prediction on the report grid, made once per state of the agent.

    The accuracy and the confidence criterion share it until the agent is next told or
    asked anything (`forget`).
    """

    def __init__(self, agent: Agent, grid: np.ndarray, truth_labels: Sequence[str] | None) -> None:
        self.agent = agent
        self.grid = grid
        #: the true labels on the grid (None: the truth is unknown, no accuracy)
        self.truth_labels = truth_labels
        self._prediction: Prediction | None = None

    def forget(self) -> None:
        self._prediction = None

    def _predict(self) -> Prediction:
        if self._prediction is None:
            self._prediction = self.agent.predict(self.grid)
        return self._prediction

    def confidence(self) -> float | None:
        prediction = self._predict()
        if prediction.probabilities is None or prediction.probabilities.size == 0:
            return None
        return float(np.mean(np.max(prediction.probabilities, axis=1)))

    def accuracy(self) -> float | None:
        """The accuracy of the agent's phase map now against the truth (None without a truth or labels)."""
        if self.truth_labels is None:
            return None
        labels = self._predict().most_likely()
        if all(lab is None for lab in labels):
            return None
        return phase_map_accuracy(labels, self.truth_labels)


class Accounting:
    """The campaign's counts, budgets and stations' health as the loop goes, read by its stop criteria
    and its display.

    `entries` (the loop's ledger entries by sample uid), `plan_errors` (why each sample whose plan
    failed failed, known as its run ends) and `outcome` are the loop's own, shared and not copied.
    """

    def __init__(
        self,
        campaign: Campaign,
        rigs: Mapping[str, StationRig],
        breaker: StationBreaker,
        prediction: MapPrediction,
        *,
        entries: dict[str, LedgerEntry],
        plan_errors: Mapping[str, str],
        outcome: Outcome,
        stop_requested: Callable[[], bool],
        accuracy_every: int | None,
    ) -> None:
        self.campaign = campaign
        self.rigs = rigs
        self.breaker = breaker
        self.prediction = prediction
        self.entries = entries
        self.plan_errors = plan_errors
        self.outcome = outcome
        self.stop_requested = stop_requested
        self.accuracy_every = accuracy_every
        #: the latest map accuracy recorded with a sample (None before the first)
        self.last_accuracy: float | None = None

    def station_ran(self, station: str, error: str | None, now_s: float) -> None:
        """Tell the breaker how the station's sample went: its plan ran, or the station failed it.

        Only the plan counts: a sample whose curve cannot be analysed says nothing about the station.
        """
        if self.breaker.record(station, ok=error is None, now_s=now_s, reason=error):
            health = self.breaker.health(now_s)[station]
            self.outcome.set_aside[station] = health.to_dict()
            logger.warning(
                "station %s is set aside after %d failed samples in a row (the last: %s); it gets a trial "
                "sample at station time %.0f s",
                station,
                health.failures_in_a_row,
                error,
                health.retry_at_s or math.nan,
            )

    def stop_reason(self) -> str | None:
        """Why the campaign stops now (`tandem.campaign.stop_rules` decides), or None."""
        stop = self.campaign.stop
        reason = self.budget_spent() or self._all_set_aside()
        if reason is not None:
            return reason
        progress = self.stop_progress()
        failing = failure_reason(stop, progress)
        if failing is not None:
            self.outcome.stopped_on_failures = True
            return failing
        return confidence_reason(stop, progress)

    def stop_progress(self) -> CampaignProgress:
        """The campaign's progress as its stop criteria measure it."""
        streak, last = self._failures_in_a_row()
        return CampaignProgress(
            samples=self.samples_done(),
            station_hours=self.station_hours(),
            failures_in_a_row=streak,
            last_failure=last,
            confidence=self.prediction.confidence,
        )

    def _all_set_aside(self) -> str | None:
        """Why the campaign stops if every station is set aside at once (nothing left to spend it on)."""
        if not self.breaker.all_set_aside():
            return None
        self.outcome.stopped_on_failures = True
        why = "; ".join(
            f"{sid}: {h.failures_in_a_row} in a row, the last with {h.last_failure}"
            for sid, h in self.breaker.health(0.0).items()
        )
        return f"every station is set aside, their samples kept failing ({why})"

    def _failures_in_a_row(self) -> tuple[int, str | None]:
        """How many of the latest samples failed one after another, and the latest one's reason.

        A sample counts as failed once its plan has failed or its ledger entry says failed (the
        analysis too can fail it, known a little later); one cut off by a stop is skipped, and the
        streak ends at a sample that was measured or whose result is not in yet.
        """
        streak, last = 0, None
        for entry in reversed(self.entries.values()):
            if not entry.counts:
                continue
            why = (
                entry.reason
                if entry.status is SampleStatus.FAILED
                else self.plan_errors.get(entry.sample_uid)
            )
            if why is None:
                break
            streak += 1
            last = last or why
        return streak, last

    def samples_done(self) -> int:
        # a sample whose run is over counts, whether or not its result is in yet; one cut off by a stop
        # does not (its decision is run again as a new sample), so a kill costs no part of the budget
        return sum(1 for e in self.entries.values() if (e.done or e.end_s is not None) and e.counts)

    def budget_spent(self) -> str | None:
        """Why the campaign stops now, by the criteria that cost nothing to check (not the confidence)."""
        if self.stop_requested():
            return "stopped by the user"
        return budget_reason(self.campaign.stop, self.stop_progress())

    def station_hours(self) -> float:
        return sum(rig.clock.busy_s() for rig in self.rigs.values()) / 3600

    def accuracy_due(self, n_samples: int) -> bool:
        """Whether the map accuracy is recorded with the `n_samples`-th sample (see `CampaignRunner`)."""
        if self.prediction.truth_labels is None:
            return False
        return accuracy_due(n_samples, self.accuracy_every) or self.budget_spent() is not None

    def record_accuracy(self) -> float | None:
        """The map accuracy now, kept as the latest for the display."""
        self.last_accuracy = self.prediction.accuracy()
        return self.last_accuracy

    def progress(self) -> Progress:
        """The samples that are durable (run, analysis and ledger entry in Tiled), as the report will show."""
        durable = [e for e in self.entries.values() if e.done and e.counts]
        by_station = {sid: sum(1 for e in durable if e.station == sid) for sid in self.rigs}
        return Progress(
            samples_by_station=by_station,
            failed=sum(1 for e in durable if e.status is SampleStatus.FAILED),
            station_time_s={sid: rig.clock.now_s for sid, rig in self.rigs.items()},
            busy_s={sid: rig.clock.busy_s() for sid, rig in self.rigs.items()},
            accuracy=self.last_accuracy,
            budget_samples=self.campaign.stop.max_samples,
            in_flight=sum(1 for e in self.entries.values() if not e.done),
            set_aside=tuple(sid for sid, h in self.breaker.health(0.0).items() if h.retry_at_s is not None),
        )
