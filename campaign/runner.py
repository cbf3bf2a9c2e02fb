"""The closed loop of a campaign on the digital twin, both stations at once on their virtual clocks.

The loop is a discrete-event simulation of two labs that run in parallel: the
station whose clock is earliest is the one that is free next. The agent decides
for it knowing only the results that have *finished* by that station time, and
with every sample still running on the other station passed as pending. Each
sample then runs for real — recipe, robot, cell loader over Channel Access,
detector frames, the Tiled writer, analysis — and its result becomes visible to
decisions made after its station time of completion.

Everything that matters is in Tiled (raw runs, analysed nodes, the ledger of
samples, the decision records), so `resume` rebuilds the campaign from there.

What the loop waits for, and what it does not. The agent needs a sample's result
only when it decides for a station whose clock has passed the sample's end; so the
RunEngine hands each run to a Tiled writer thread (one per station) and to the
analysis, and the loop goes on at once. Analysis has two threads, each taking the
runs in the order they closed: one reduces and labels them, the other writes their
analysed nodes and fits the models. When a decision needs a result, the loop waits
for it: for its label (the phase agents learn from labels), which does not wait for
earlier runs' nodes or fits, or, for an agent that learns from fitted parameters,
for the complete record. A label depends on its own run's curve only, and the
agent is told the results in the order the samples ran, so decisions do not depend
on thread timing.

A sample's ledger entry is marked measured (or failed) by a completion thread,
only after its run is in Tiled and its analysed node complete: a campaign killed
at any point finds in the ledger no result that Tiled does not hold, and resumes
as before. Stopping (the sample budget, Ctrl-C, an error) drains all of it first.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeoutError
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from tandem.agents.protocol import Agent, Prediction
from tandem.agents.records import DecisionRecord, write_records
from tandem.analysis.pipeline import AnalysisCallback, AnalysisSeconds, AnalysisSettings, Analyzer
from tandem.analysis.store import AnalysisRecord, AnalysisStore
from tandem.breaker import StationBreaker
from tandem.campaign.agent_factory import agent_learns_from_fits, build_agent
from tandem.campaign.config import Campaign
from tandem.campaign.history import agent_observation, results_of, truth_on
from tandem.campaign.kill_points import KillPoints
from tandem.campaign.ledger import CAMPAIGNS, INTERRUPTED_REASON, Ledger, LedgerEntry, SampleStatus
from tandem.campaign.metrics import phase_map_accuracy
from tandem.campaign.phases import CampaignPhases
from tandem.campaign.rig import StationRig, TwinLab, twin_calibration, twin_lab
from tandem.catalog import Catalog, RawRun
from tandem.components import Component
from tandem.composition import Composition
from tandem.data_folder import check_data_folder, claim_data_folder, marked_campaign
from tandem.errors import TandemError
from tandem.plans.measurement import measure_empty_cell
from tandem.plans.sample import sample_plan
from tandem.sim.clock import Interval
from tandem.store_guard import is_store_unreachable
from tandem.suggestions import ScanParameters, Suggestion

logger = logging.getLogger(__name__)


#: the stop reason of a campaign stopped (Ctrl-C) while it waited for its data store to answer
STOPPED_IN_OUTAGE = "stopped by the user while the data store did not answer"
#: how often the final drain looks whether it was stopped during a store outage (seconds)
_DRAIN_POLL_S = 0.5
_T = TypeVar("_T")

#: the confidence stop criterion is not trusted on fewer samples than this
MIN_SAMPLES_FOR_CONFIDENCE = 10
#: The live map accuracy is a prediction on the whole report grid, whose cost grows with the square of
#: the results learnt from (0.1 s at 40 samples, 0.5 s at 100 on two busy cores). By default the n-th
#: sample records it when n is a multiple of n // this (every sample up to twice this, then every
#: second, third, ...: the accuracy curve keeps a resolution of a twentieth of the campaign and its
#: cost grows only in proportion to n), and so does the sample that spends the sample or beamtime
#: budget or during which the user stopped the campaign.
ACCURACY_EVERY_SAMPLE_UP_TO = 20


class CampaignRunError(TandemError, RuntimeError):
    """The campaign cannot run or resume (for example, resuming a campaign that is not in the catalog)."""


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


@dataclass
class _InFlight:
    """A sample whose run is over, and whose results may still be on their way (analysis, Tiled)."""

    entry: LedgerEntry
    #: why the plan failed (None: it did not)
    error: str | None
    #: resolves when analysis has done every run up to this sample's (both stages)
    analysed: Future[AnalysisSeconds]
    #: resolves when the station's Tiled writer has written every run up to this sample's
    written: Future[float]
    #: seconds of the loop's own work on this sample, by stage
    loop_timings_s: Mapping[str, float] = field(default_factory=dict)


class _Results:
    """Analysed records by sample uid, as the analysis threads hand them over: `readable` from the
    labelling thread (labelled, or failed before a label), `complete` from the fitting thread."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.readable: dict[str, AnalysisRecord] = {}
        self.complete: dict[str, AnalysisRecord] = {}

    def on_labelled(self, record: AnalysisRecord) -> None:
        if record.sample_uid is None:
            return
        with self._changed:
            self.readable[record.sample_uid] = record
            self._changed.notify_all()

    def on_done(self, record: AnalysisRecord) -> None:
        if record.sample_uid is None:
            return
        with self._changed:
            self.complete[record.sample_uid] = record
            self.readable.setdefault(record.sample_uid, record)
            self._changed.notify_all()

    def watch(self, barrier: Future[AnalysisSeconds]) -> None:
        """Wake waiters when `barrier` resolves (a sample without analysis resolves only so)."""

        def wake(_: Future[AnalysisSeconds]) -> None:
            with self._changed:
                self._changed.notify_all()

        barrier.add_done_callback(wake)

    def wait(
        self, sample_uid: str, barrier: Future[AnalysisSeconds], *, complete: bool
    ) -> AnalysisRecord | None:
        """The sample's record (readable, or `complete`), or None once its run was analysed without one."""
        records = self.complete if complete else self.readable
        with self._changed:
            self._changed.wait_for(lambda: sample_uid in records or barrier.done())
            return records.get(sample_uid)

    def forget(self, sample_uid: str) -> None:
        with self._changed:
            self.readable.pop(sample_uid, None)
            self.complete.pop(sample_uid, None)


class CampaignRunner:
    """Runs `campaign` on the twin, writing everything under `directory` (Tiled catalog, report).

    The map accuracy against the truth is recorded with a sample (`LedgerEntry.accuracy`, the report's
    accuracy curve) after every `accuracy_every`-th sample, by default (None) after every sample at
    first and more sparsely as the campaign grows (`ACCURACY_EVERY_SAMPLE_UP_TO`); and after the sample
    that spends a budget or is the last before a stop by the user.
    """

    def __init__(
        self,
        campaign: Campaign,
        directory: Path,
        *,
        resume: bool = False,
        on_progress: Callable[[Progress], None] | None = None,
        accuracy_every: int | None = None,
    ) -> None:
        self.campaign = campaign
        self.directory = Path(directory)
        self.resume = resume
        self.on_progress = on_progress
        if accuracy_every is not None and accuracy_every < 1:
            raise CampaignRunError(
                f"accuracy_every is a number of samples (1 or more), or None for the default; "
                f"got {accuracy_every}"
            )
        self.accuracy_every = accuracy_every
        self._stop_requested = False
        #: fault injection (`tandem.campaign.kill_points`): no-ops unless TANDEM_KILL_AT is set
        self.kill_points = KillPoints.from_environment()
        grid = campaign.grid()
        self.grid = grid
        self.truth_labels = truth_on(campaign, grid)

    def request_stop(self) -> None:
        """Finish the sample in progress, then stop (Ctrl-C)."""
        self._stop_requested = True

    def run(self) -> Outcome:
        check_data_folder(self.directory)  # a folder tandem did not make: refused, nothing written
        catalog_exists = (self.directory / "tiled").exists()
        if self.resume and not catalog_exists:
            raise CampaignRunError(f"nothing to resume: {self.directory} holds no campaign catalog")
        if not self.resume and catalog_exists:
            raise CampaignRunError(
                f"{self.directory} holds a campaign already: resume it (--resume) or name a new folder"
            )
        held = marked_campaign(self.directory)
        if self.resume and held is not None and held != self.campaign.id:
            raise _other_campaign(self.directory, held, self.campaign.id)
        claim_data_folder(self.directory, campaign_id=self.campaign.id)
        with twin_lab(
            self.campaign,
            self.directory,
            background_writer=True,
            stop_requested=self.stop_requested,
            wrap_writer=self.kill_points.wrap_writer if self.kill_points.armed else None,
        ) as lab:
            return _Loop(self, lab).run()

    def stop_requested(self) -> bool:
        return self._stop_requested


def _other_campaign(directory: Path, held: str | Sequence[str], campaign_id: str) -> CampaignRunError:
    held_ids = [held] if isinstance(held, str) else list(held)
    named = ", ".join(repr(h) for h in held_ids) or "no campaign"
    return CampaignRunError(
        f"{directory} holds campaign {named}, not {campaign_id!r}: resuming there would start campaign "
        f"{campaign_id!r} beside it and replace its report. Resume {named} with its own campaign file, "
        f"or run {campaign_id!r} in a new folder"
    )


class _Loop:
    def __init__(self, runner: CampaignRunner, lab: TwinLab) -> None:
        self.runner = runner
        self.timer = StageTimer()
        self.campaign = runner.campaign
        self.lab = lab
        self.client = lab.tiled_client
        self.catalog = Catalog(self.client)
        if runner.resume:
            # a folder without a marker naming its campaign (older ones) is checked in its catalog
            held = list(self.client[CAMPAIGNS]) if CAMPAIGNS in self.client else []
            if self.campaign.id not in held:
                raise _other_campaign(runner.directory, held, self.campaign.id)
        self.ledger = Ledger.create(self.client, self.campaign.id, self.campaign.to_dict())
        calibrations = {sid: twin_calibration(s.instrument) for sid, s in self.campaign.stations.items()}
        solvents = tuple({s.solvent.name for s in self.campaign.stations.values()})
        self.analyzer = Analyzer(
            self.client, AnalysisSettings(calibrations=calibrations, solvent_names=solvents)
        )
        self.agent: Agent = build_agent(self.campaign)
        self.phases = CampaignPhases(self.agent, self._record_phases)
        self.needs_fits = agent_learns_from_fits(self.campaign)
        # station time is each station's own clock: a set-aside station's pause runs on the clocks of
        # the stations that go on working (see `_next_station`)
        self.breaker = StationBreaker(self.campaign.stations, self.campaign.faults.breaker_settings())
        self.entries: dict[str, LedgerEntry] = {}
        self.hidden: list[_InFlight] = []  # finished, but after the deciding station's time
        self._empty_cells: set[tuple[str, str]] = set()
        self.outcome = Outcome(self.campaign.id, [])
        self.results = _Results()
        self.analyzer.on_labelled = self._labelled
        # one analysis for both stations: runs are labelled, and then fitted, in the order they closed
        self.analysis = AnalysisCallback(self.analyzer, on_done=self.results.on_done, in_background=True)
        for rig in lab.rigs.values():
            rig.RE.subscribe(self.analysis)
            if runner.kill_points.armed:
                rig.RE.subscribe(runner.kill_points.document)
        # ledger entries are completed in the order the samples ran, once their results are in Tiled
        self._completer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger")
        self._completions: list[Future[LedgerEntry]] = []
        self._phase_writes: list[Future[None]] = []
        self._records_written = 0
        self._last_accuracy: float | None = None
        #: why each sample whose plan failed failed, known as its run ends (before its ledger entry is)
        self._plan_errors: dict[str, str] = {}
        # the agent's prediction on the report grid: the accuracy and the confidence criterion share it
        # until the agent is next told or asked anything
        self._prediction: Prediction | None = None

    # -- the loop ---------------------------------------------------------------------------------

    def run(self) -> Outcome:
        started = time.perf_counter()
        try:
            reason = self._loop()
        finally:
            # whatever stopped the loop, every sample that ran gets its result into Tiled and the ledger
            self._drain()
        self._report_progress()  # every sample is durable now: the display ends on the final counts
        self.outcome.loop_s = time.perf_counter() - started
        self.outcome.entries = list(self.entries.values())
        self.outcome.stop_reason = reason
        logger.info("campaign %s stopped: %s", self.campaign.id, reason)
        return self.outcome

    def _loop(self) -> str:
        redo = self._restore() if self.runner.resume else []
        for entry in redo:
            if not self._store_answers():
                return STOPPED_IN_OUTAGE
            self._run_sample(entry, started=time.perf_counter())
        while (reason := self._stop_reason()) is None:
            started = time.perf_counter()
            self._harvest()
            rig = self._next_station()
            if rig is None:
                return "every station has used its beamtime"
            self._reveal(rig.clock.now_s)
            decided = self._decide(rig)
            if decided is None:
                return f"the agent has nothing to suggest for {rig.id}"
            self.runner.kill_points.passed("decided")
            # no sample is prepared that could not be recorded: an outage pauses the loop here
            if not self._store_answers():
                return STOPPED_IN_OUTAGE
            self._run_sample(decided, started=started)
        self._reveal(math.inf)
        return reason

    def _labelled(self, record: AnalysisRecord) -> None:
        self.results.on_labelled(record)
        self.runner.kill_points.passed("analysed")

    def _store_answers(self) -> bool:
        """Wait until the data store answers (restarting the embedded server); False if stopped meanwhile."""
        return self.lab.store is None or self.lab.store.wait_for_store(self.runner.stop_requested)

    def _durably(self, write: Callable[[], _T]) -> _T:
        """`write()`, tried again each time the store is back after an outage (not after other errors)."""
        while True:
            try:
                return write()
            except Exception as exc:
                if not is_store_unreachable(exc) or not self._store_answers():
                    raise

    def _drain(self) -> None:
        self.analysis.close()
        for future in self._completions:
            while True:
                try:
                    future.result(timeout=_DRAIN_POLL_S)
                except FutureTimeoutError:
                    if self.runner.stop_requested() and self.lab.store is not None and self.lab.store.is_down:
                        # stopped while the store is down: the writers give up (and keep what they
                        # could not write under unwritten/) rather than wait for ever
                        self.lab.store.close()
                    continue
                except Exception:
                    logger.exception("a sample's ledger entry could not be completed")
                break
        for write in self._phase_writes:
            try:
                write.result()
            except Exception:
                logger.exception("phase events could not be written to the ledger")
        self._harvest()
        self._completer.shutdown(wait=True)

    def _next_station(self) -> StationRig | None:
        """The station free first, by station time; a set-aside station is free once its pause is over."""
        free = [
            rig
            for sid, rig in self.lab.rigs.items()
            if (limit := self.campaign.stations[sid].spec.max_hours) is None or rig.clock.now_s < limit * 3600
        ]
        health = self.breaker.health(0.0)

        def free_at(rig: StationRig) -> float:
            if self.breaker.may_send(rig.id, rig.clock.now_s):
                return rig.clock.now_s
            retry_at = health[rig.id].retry_at_s
            return max(rig.clock.now_s, retry_at if retry_at is not None else math.inf)

        rig = min(free, key=lambda r: (free_at(r), r.id), default=None)
        if rig is None or math.isinf(free_at(rig)):
            return None
        rig.clock.idle_until(free_at(rig))  # a set-aside station sat idle through its pause
        self.breaker.sent(rig.id, rig.clock.now_s)
        return rig

    def _decide(self, rig: StationRig) -> LedgerEntry | None:
        pending_suggestions = [self._as_suggestion(r.entry) for r in self.hidden]
        with self.timer.timed("agent"):
            suggestions = self.agent.suggest(rig.id, 1, pending_suggestions)
        self._prediction = None
        if not suggestions:
            return None
        suggestion = suggestions[0]
        entry = LedgerEntry(
            sample_uid=str(uuid.uuid4()),
            campaign_id=self.campaign.id,
            station=rig.id,
            decision_uid=suggestion.decision_uid,
            target={n: w for n, w in suggestion.target.mass_fractions.items() if n in self.campaign.solutes},
            scan=suggestion.scan.to_dict(),
            start_s=rig.clock.now_s,
        )
        # in the station's Tiled queue, ahead of the sample's run: every run in Tiled is one the ledger knows
        records = self.agent.records[self._records_written :]
        self._records_written += len(records)
        with self.timer.timed("ledger"):
            self._in_order(rig, functools.partial(self._record_decision, records, entry))
        return entry

    def _record_decision(self, records: Sequence[DecisionRecord], entry: LedgerEntry) -> None:
        write_records(self.ledger.decisions, records)
        self.ledger.add(entry)

    def _record_phases(self, events: Sequence[dict[str, Any]], state: dict[str, Any]) -> None:
        """Phase events and state go to Tiled in the ledger's completion thread, after earlier entries."""
        self._phase_writes.append(self._completer.submit(self._write_phases, list(events), state))

    def _write_phases(self, events: list[dict[str, Any]], state: dict[str, Any]) -> None:
        self._durably(lambda: self.ledger.record_phases(events, state))

    def _in_order(self, rig: StationRig, write: Callable[[], object]) -> None:
        """Write to Tiled in order with the station's runs (at once if the rig writes synchronously)."""
        if rig.writer is None:
            write()
        else:
            rig.writer.submit(write)

    def _empty_cell(self, rig: StationRig, configuration: str) -> None:
        """Measure the empty cell once per detector configuration: every later sample there uses it."""
        key = (rig.id, configuration)
        if key in self._empty_cells:
            return
        spec = self.campaign.stations[rig.id]
        rig.RE(
            measure_empty_cell(
                rig.station,
                spec.spec.scan.exposure_s.default,
                configuration=configuration,
                temperature_c=spec.spec.scan.temperature_c,
                md={"campaign_id": self.campaign.id},
            )
        )
        self._empty_cells.add(key)

    def _run_sample(self, entry: LedgerEntry, *, started: float) -> None:
        """Run the sample's plan, then hand its results over to the background; `started`: when the loop
        began working on it (its decision included)."""
        rig = self.lab.rigs[entry.station]
        spec = self.campaign.stations[entry.station]
        start_s = rig.clock.now_s
        first_interval = len(rig.clock.timeline)
        self.results.forget(entry.sample_uid)
        with self.timer.timed("plans"):  # the RunEngine only hands its documents to the writer and analysis
            try:
                self._empty_cell(rig, str(entry.scan.get("configuration") or spec.default_configuration))
                rig.RE(
                    sample_plan(
                        rig.station,
                        rig.liquid_handler,
                        rig.cell_loader,
                        dict(entry.target),
                        float(entry.scan["exposure_s"]),
                        configuration=entry.scan.get("configuration"),
                        temperature_c=entry.scan.get("temperature_c"),
                        n_frames=int(entry.scan.get("n_frames", 1)),
                        balance=spec.solvent.name,
                        campaign_id=self.campaign.id,
                        decision_uid=entry.decision_uid,
                        sample_uid=entry.sample_uid,
                        total_volume_ul=spec.spec.sample_volume_ul,
                        load_volume_ul=min(spec.spec.sample_volume_ul / 2, 300.0),
                        measure_empty_cell=False,
                    )
                )
                error = None
            except Exception as exc:  # a failed sample is recorded and the campaign goes on
                logger.warning("sample %s on %s failed: %s", entry.sample_uid, entry.station, exc)
                error = f"{type(exc).__name__}: {exc}"
                self._plan_errors[entry.sample_uid] = error
        self._station_health(entry.station, error, rig.clock.now_s)
        ran = replace(
            entry,
            start_s=start_s,
            end_s=rig.clock.now_s,
            inventory=_inventory(rig),
            activities=_activities(rig.clock.timeline[first_interval:]),
            campaign_station_hours=self._station_hours(),
        )
        self.entries[ran.sample_uid] = ran
        if self._accuracy_due(len(self.entries)):
            with self.timer.timed("progress"):
                ran = replace(ran, accuracy=self._accuracy())
                self._last_accuracy = ran.accuracy
        self.entries[ran.sample_uid] = ran
        analysed = self.analysis.barrier()
        self.results.watch(analysed)
        written = rig.writer.barrier() if rig.writer is not None else _resolved()
        timings = self.timer.take()
        timings["loop"] = time.perf_counter() - started
        flight = _InFlight(ran, error, analysed, written, timings)
        self.hidden.append(flight)
        self._completions.append(self._completer.submit(self._complete, flight))
        self._report_progress()

    def _station_health(self, station: str, error: str | None, now_s: float) -> None:
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

    def _complete(self, flight: _InFlight) -> LedgerEntry:
        """The sample's ledger entry with its result, written once its run and analysis are in Tiled.

        Runs in the completion thread, one sample after the other in the order they ran.
        """
        entry, reason = flight.entry, flight.error
        uid = entry.sample_uid
        timings = dict(flight.loop_timings_s)
        try:
            timings["tiled"] = flight.written.result()
        except Exception as exc:
            reason = reason or f"the run could not be written to Tiled: {exc}"
        record = None
        try:
            seconds = flight.analysed.result()
            timings["analysis"], timings["fits"] = seconds.label_s, seconds.fits_s
            record = self.results.complete.get(uid)
        except Exception as exc:
            timings["analysis"] = timings["fits"] = math.nan
            if is_store_unreachable(exc) and reason is None:
                # the store went away under the analysis: the run is in Tiled now, analyse it again
                record = self._durably(functools.partial(self._analyse_again, uid))
            else:  # the analysis itself failed: no result, but the sample is recorded
                logger.exception("analysis of sample %s did not finish", uid)
                reason = reason or f"analysis did not finish: {exc}"
        ok = reason is None and record is not None and record.ok
        told = self.results.readable.get(uid)
        if told is not None and told.ok and record is not None and not record.ok and not self.needs_fits:
            # rare (no candidate model converged): the ledger says failed, as a resumed agent will
            logger.warning("sample %s: the agent learnt a label that the model fits then failed", uid)
        done = replace(
            entry,
            status=SampleStatus.MEASURED if ok else SampleStatus.FAILED,
            run_uid=record.run_uid if record is not None else None,
            reason=None if ok else (reason or _failure(record)),
            timings_s=timings,
        )
        self.runner.kill_points.passed("recorded")
        self._durably(lambda: self.ledger.update(done))
        return done

    def _analyse_again(self, sample_uid: str) -> AnalysisRecord | None:
        runs = [r for r in self.catalog.runs(sample_uid=sample_uid) if r.plan_name == "sample_plan"]
        return self.analyzer.analyze(runs[0].uid) if runs else None

    def _harvest(self) -> None:
        """Take in the ledger entries the completion thread has finished, in the order the samples ran."""
        while self._completions and self._completions[0].done():
            future = self._completions.pop(0)
            try:
                done = future.result()
            except Exception:
                logger.exception("a sample's ledger entry could not be completed")
                continue
            self.entries[done.sample_uid] = done

    def _reveal(self, now_s: float) -> None:
        """Tell the agent every result that finished by station time `now_s` (waiting for it if need be)."""
        visible = [r for r in self.hidden if (r.entry.end_s or 0.0) <= now_s]
        if not visible:
            return
        self.hidden = [r for r in self.hidden if r not in visible]
        results = []
        with self.timer.timed("wait"):
            for flight in visible:
                if flight.error is not None:
                    continue
                record = self.results.wait(flight.entry.sample_uid, flight.analysed, complete=self.needs_fits)
                if record is not None:  # a failed analysis too: the agent keeps a note of what it skips
                    results.append((record, agent_observation(self.campaign, record, flight.entry.end_s)))
        if results:
            with self.timer.timed("phases"):
                observations = self.phases.learn(results)
            with self.timer.timed("agent"):
                self.agent.tell(observations)
            self._prediction = None

    def _as_suggestion(self, entry: LedgerEntry) -> Suggestion:
        spec = self.campaign.stations[entry.station]
        components = [*(self.campaign.components[n] for n in entry.target), spec.solvent]
        target = Composition.from_mass_fractions(components, dict(entry.target), balance=spec.solvent.name)
        return Suggestion(
            station=entry.station,
            target=target,
            scan=ScanParameters.from_dict(entry.scan),
            agent=self.agent.name,
            decision_uid=entry.decision_uid,
        )

    # -- stop criteria and progress ------------------------------------------------------------

    def _stop_reason(self) -> str | None:
        stop = self.campaign.stop
        reason = self._budget_spent() or self._all_set_aside() or self._failing()
        if reason is not None:
            return reason
        if stop.target_confidence is not None and self._samples_done() >= MIN_SAMPLES_FOR_CONFIDENCE:
            confidence = self._confidence()
            if confidence is not None and confidence >= stop.target_confidence:
                return f"confidence target reached ({confidence:.3f} >= {stop.target_confidence:g})"
        return None

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

    def _failing(self) -> str | None:
        """Why the campaign stops if its last `stop.max_consecutive_failures` samples all failed.

        A sample counts as failed once its plan has failed or its ledger entry says failed (the
        analysis too can fail it, known a little later); one cut off by a stop is skipped, and the
        streak ends at a sample that was measured or whose result is not in yet.
        """
        limit = self.campaign.stop.max_consecutive_failures
        streak, last = 0, ""
        for entry in reversed(self.entries.values()):
            if not entry.counts:
                continue
            why = (
                entry.reason
                if entry.status is SampleStatus.FAILED
                else self._plan_errors.get(entry.sample_uid)
            )
            if why is None:
                break
            streak += 1
            last = last or why
        if streak < limit:
            return None
        self.outcome.stopped_on_failures = True
        return (
            f"{streak} samples in a row failed (stop.max_consecutive_failures is {limit}); "
            f"the last failed with: {last}"
        )

    def _samples_done(self) -> int:
        # a sample whose run is over counts, whether or not its result is in yet; one cut off by a stop
        # does not (its decision is run again as a new sample), so a kill costs no part of the budget
        return sum(1 for e in self.entries.values() if (e.done or e.end_s is not None) and e.counts)

    def _budget_spent(self) -> str | None:
        """Why the campaign stops now, by the criteria that cost nothing to check (not the confidence)."""
        stop = self.campaign.stop
        if self.runner._stop_requested:
            return "stopped by the user"
        if stop.max_samples is not None and self._samples_done() >= stop.max_samples:
            return f"sample budget reached ({stop.max_samples})"
        busy_h = sum(rig.clock.busy_s() for rig in self.lab.rigs.values()) / 3600
        if stop.max_station_hours is not None and busy_h >= stop.max_station_hours:
            return f"beamtime budget reached ({stop.max_station_hours:g} station hours)"
        return None

    def _accuracy_due(self, n_samples: int) -> bool:
        """Whether the map accuracy is recorded with the `n_samples`-th sample (see `CampaignRunner`)."""
        if self.runner.truth_labels is None:
            return False
        return accuracy_due(n_samples, self.runner.accuracy_every) or self._budget_spent() is not None

    def _predict(self) -> Prediction:
        """The agent's prediction on the report grid (one per state of the agent)."""
        if self._prediction is None:
            self._prediction = self.agent.predict(self.runner.grid)
        return self._prediction

    def _confidence(self) -> float | None:
        prediction = self._predict()
        if prediction.probabilities is None or prediction.probabilities.size == 0:
            return None
        return float(np.mean(np.max(prediction.probabilities, axis=1)))

    def _station_hours(self) -> float:
        return sum(rig.clock.busy_s() for rig in self.lab.rigs.values()) / 3600

    def _accuracy(self) -> float | None:
        """The accuracy of the agent's phase map now against the truth (None without a truth or labels)."""
        if self.runner.truth_labels is None:
            return None
        labels = self._predict().most_likely()
        if all(lab is None for lab in labels):
            return None
        return phase_map_accuracy(labels, self.runner.truth_labels)

    def _report_progress(self) -> None:
        """Show the samples that are durable (run, analysis and ledger entry in Tiled), as the report will."""
        if self.runner.on_progress is None:
            return
        self._harvest()
        durable = [e for e in self.entries.values() if e.done and e.counts]
        by_station = {sid: sum(1 for e in durable if e.station == sid) for sid in self.lab.rigs}
        self.runner.on_progress(
            Progress(
                samples_by_station=by_station,
                failed=sum(1 for e in durable if e.status is SampleStatus.FAILED),
                station_time_s={sid: rig.clock.now_s for sid, rig in self.lab.rigs.items()},
                busy_s={sid: rig.clock.busy_s() for sid, rig in self.lab.rigs.items()},
                accuracy=self._last_accuracy,
                budget_samples=self.campaign.stop.max_samples,
                in_flight=sum(1 for e in self.entries.values() if not e.done),
                set_aside=tuple(
                    sid for sid, h in self.breaker.health(0.0).items() if h.retry_at_s is not None
                ),
            )
        )

    # -- resume ------------------------------------------------------------------------------------

    def _recovered(self, entry: LedgerEntry, run: RawRun) -> LedgerEntry:
        """The ledger entry of a sample whose run closed before the campaign stopped."""
        note = "recovered from its run after the campaign stopped; its station time was not recorded"
        if not run.succeeded:
            return replace(
                entry, status=SampleStatus.FAILED, run_uid=run.uid, end_s=entry.start_s, reason=run.reason
            )
        record = self.analyzer.analyze(run.uid)  # the node written before the stop, or a new one
        status = SampleStatus.MEASURED if record.ok else SampleStatus.FAILED
        reason = note if record.ok else f"{_failure(record)}; {note}"
        return replace(entry, status=status, run_uid=run.uid, end_s=entry.start_s, reason=reason)

    def _close_open_runs(self) -> None:
        """Close the campaign's runs that a stop left open (exit status abort, with the reason)."""
        for run in self.catalog.iter_runs(campaign_id=self.campaign.id):
            if not run.is_closed:
                self.catalog.close_interrupted(run, INTERRUPTED_REASON)

    def _restore(self) -> list[LedgerEntry]:
        """Rebuild clocks, inventories and the agent from the ledger; return the samples to run (again)."""
        self._close_open_runs()
        entries = self.ledger.entries()
        redo: list[LedgerEntry] = []
        for entry in entries:
            if entry.done:
                self.entries[entry.sample_uid] = entry
                continue
            runs = [r for r in self.catalog.runs(sample_uid=entry.sample_uid) if r.plan_name == "sample_plan"]
            if not runs:
                redo.append(entry)  # decided, never started: run it now, same sample
                continue
            closed = [r for r in runs if r.reason != INTERRUPTED_REASON]  # not the ones closed just now
            if closed:  # the run ended before the stop, only its ledger entry was not written
                done = self._recovered(entry, closed[0])
                self.ledger.update(done)
                self.entries[done.sample_uid] = done
                continue
            # started but never finished: that sample went to waste (its run was closed above, exit status
            # abort); its decision is run again as a new sample
            interrupted = replace(entry, status=SampleStatus.INTERRUPTED, reason=INTERRUPTED_REASON)
            self.ledger.update(interrupted)
            self.entries[interrupted.sample_uid] = interrupted
            again = replace(entry, sample_uid=str(uuid.uuid4()), decided_at=time.time())
            self.ledger.add(again)
            redo.append(again)
        for sid, rig in self.lab.rigs.items():
            finished = [e for e in self.entries.values() if e.station == sid and e.end_s is not None]
            for entry in finished:  # the station's busy time so far: beamtime and utilisation go on from it
                for kind, start_s, end_s in entry.activities:
                    rig.clock.record(kind, start_s, end_s)
            if finished:
                last = max(finished, key=lambda e: e.end_s or 0.0)
                rig.clock.idle_until(last.end_s or 0.0)
                if last.inventory:
                    _restore_inventory(rig, last.inventory, self.campaign.stations[sid].solvent)
        records = {r.run_uid: r for r in AnalysisStore(self.client).records(campaign_id=self.campaign.id)}
        self.phases.restore(dict(self.ledger.phase_state()))
        self.agent.tell(self.phases.learn(results_of(self.campaign, list(self.entries.values()), records)))
        self._prediction = None
        logger.info(
            "resumed campaign %s: %d samples done, %d to run again",
            self.campaign.id,
            len(self.entries),
            len(redo),
        )
        return redo


def accuracy_due(n_samples: int, every: int | None = None) -> bool:
    """Whether the map accuracy is recorded with the `n_samples`-th sample: every `every`-th, or by
    default when n is a multiple of n // `ACCURACY_EVERY_SAMPLE_UP_TO`."""
    step = every or max(1, n_samples // ACCURACY_EVERY_SAMPLE_UP_TO)
    return n_samples % step == 0


def _resolved() -> Future[float]:
    done: Future[float] = Future()
    done.set_result(0.0)
    return done


def _failure(record: AnalysisRecord | None) -> str:
    if record is None:
        return "no analysed result"
    return record.failure_reason or f"analysis {record.status.value}"


#: how a station's clock activities group on the timeline
_ACTIVITY_KINDS = (("liquid_handler", "prepare"), ("load", "load"), ("rinse", "rinse"), ("expose", "measure"))


def _activities(intervals: Sequence[Interval]) -> tuple[tuple[str, float, float], ...]:
    """The station's intervals grouped into runs of one kind (prepare, load, measure, rinse, set up)."""
    out: list[tuple[str, float, float]] = []
    for interval in intervals:
        kind = next((k for prefix, k in _ACTIVITY_KINDS if interval.activity.startswith(prefix)), "set up")
        if out and out[-1][0] == kind and abs(out[-1][2] - interval.start_s) < 1e-9:
            out[-1] = (kind, out[-1][1], interval.end_s)
        else:
            out.append((kind, interval.start_s, interval.end_s))
    return tuple(out)


def _inventory(rig: StationRig) -> dict[str, Any]:
    deck = rig.liquid_handler.deck
    return {
        "stocks_ul": {s.name: s.volume_ul for s in deck.stocks},
        "tips_used": {r.slot: r.n_used for r in deck.tip_racks},
        "wells_ul": {w.slot: w.volume_ul for w in deck.wells if not w.is_empty},
    }


def _restore_inventory(rig: StationRig, inventory: Mapping[str, Any], solvent: Component) -> None:
    """Put the deck back as the ledger left it: stock volumes, tips used, wells taken.

    A taken well is refilled with its volume of solvent: only that it is taken, and
    how full, matters to the recipes that follow.
    """
    deck = rig.liquid_handler.deck
    for name, volume in inventory.get("stocks_ul", {}).items():
        deck = deck.with_stock_volume(name, float(volume))
    used = inventory.get("tips_used", {})
    deck = replace(
        deck, tip_racks=tuple(replace(r, n_used=int(used.get(r.slot, r.n_used))) for r in deck.tip_racks)
    )
    for slot, volume in inventory.get("wells_ul", {}).items():
        deck = deck.with_well_contents(slot, Composition.pure(solvent, total_volume_ul=float(volume)))
    with rig.liquid_handler.inventory.operation() as pending:
        pending.deck = deck
