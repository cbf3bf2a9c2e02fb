"""The closed loop of a campaign, on the digital twin's virtual clocks or on real stations' wall clocks.

On the twin, the loop is a discrete-event simulation of two labs that run in parallel:
the station whose clock is earliest is the one that is free next. On real stations
(instrument profiles with `backend: epics`, `tandem.campaign.epics_lab`) samples run
one at a time in this process and the station free next is the one whose last sample
finished first; station time is the wall's. `runner_lab` chooses the lab. The agent decides
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

The loop's parts, one job each: `runner_lab` (the twin's lab or a real one), `runner_accounting`
(stop criteria, progress, stage timings), `runner_completion` (results on their way to Tiled,
the ledger's completion thread), `runner_outage` (what a store outage does to the loop),
`runner_resume` (rebuilding a campaign from its ledger), `runner_sample` (one sample's plans on its
rig); this module decides which station runs what, and when the agent learns each result.
"""

from __future__ import annotations

import functools
import logging
import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from tandem.agents.protocol import Agent
from tandem.agents.records import DecisionRecord, write_records
from tandem.analysis.pipeline import Analyzer
from tandem.analysis.pipeline_callback import AnalysisCallback
from tandem.analysis.pipeline_settings import AnalysisSettings
from tandem.analysis.store import AnalysisRecord, AnalysisStore
from tandem.breaker import StationBreaker
from tandem.campaign.agent_factory import agent_learns_from_fits, build_agent
from tandem.campaign.config import Campaign
from tandem.campaign.history import agent_observation, results_of, truth_on
from tandem.campaign.kill_points import KillPoints
from tandem.campaign.ledger import Ledger, LedgerEntry
from tandem.campaign.phases import CampaignPhases
from tandem.campaign.runner_accounting import (
    Accounting,
    MapPrediction,
    Outcome,
    Progress,
    StageTimer,
    activities,
)
from tandem.campaign.runner_completion import Completion, InFlight, Results, resolved
from tandem.campaign.runner_lab import on_real_stations, open_lab
from tandem.campaign.runner_outage import STOPPED_IN_OUTAGE, StoreOutage
from tandem.campaign.runner_resume import (
    CampaignRunError,
    check_catalog_holds,
    claim_folder,
    deck_inventory,
    restore_stations,
    settle_ledger,
)
from tandem.campaign.runner_sample import SamplePlans, entry_suggestion
from tandem.campaign.station_rig import Lab, StationRig
from tandem.catalog import Catalog

logger = logging.getLogger(__name__)


class CampaignRunner:
    """Runs `campaign` on the twin or real stations, writing everything under `directory` (Tiled, report).

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
        # a real lab has no truth to score the map against (and a mix of labs is refused here, early)
        self.truth_labels = None if on_real_stations(campaign) else truth_on(campaign, grid)

    def request_stop(self) -> None:
        """Finish the sample in progress, then stop (Ctrl-C)."""
        self._stop_requested = True

    def run(self) -> Outcome:
        claim_folder(self.directory, self.campaign.id, resume=self.resume)
        with open_lab(
            self.campaign,
            self.directory,
            stop_requested=self.stop_requested,
            wrap_writer=self.kill_points.wrap_writer if self.kill_points.armed else None,
        ) as lab:
            return _Loop(self, lab).run()

    def stop_requested(self) -> bool:
        return self._stop_requested


class _Loop:
    def __init__(self, runner: CampaignRunner, lab: Lab) -> None:
        self.runner = runner
        self.timer = StageTimer()
        self.campaign = runner.campaign
        self.lab = lab
        self.client = lab.tiled_client
        self.catalog = Catalog(self.client)
        if runner.resume:
            check_catalog_holds(self.client, runner.directory, self.campaign.id)
        self.ledger = Ledger.create(self.client, self.campaign.id, self.campaign.to_dict())
        calibrations = lab.calibrations()
        solvents = tuple({s.solvent.name for s in self.campaign.stations.values()})
        self.analyzer = Analyzer(
            self.client, AnalysisSettings(calibrations=calibrations, solvent_names=solvents)
        )
        self.agent: Agent = build_agent(self.campaign)
        self.outage = StoreOutage(lab.store, runner.stop_requested)
        self.results = Results()
        # ledger entries are completed in the order the samples ran, once their results are in Tiled
        self.completion = Completion(
            self.ledger,
            self.catalog,
            self.analyzer,
            self.results,
            outage=self.outage,
            kill_points=runner.kill_points,
            needs_fits=agent_learns_from_fits(self.campaign),
        )
        self.phases = CampaignPhases(self.agent, self.completion.record_phases)
        # station time is each station's own clock: a set-aside station's pause runs on the clocks of
        # the stations that go on working (see `_next_station`)
        self.breaker = StationBreaker(self.campaign.stations, self.campaign.faults.breaker_settings())
        self.entries: dict[str, LedgerEntry] = {}
        self.hidden: list[InFlight] = []  # finished, but after the deciding station's time
        self.plans = SamplePlans(self.campaign)
        #: station time at which each station's last sample ended (set once the clocks are restored)
        self.freed_at: dict[str, float] = {}
        self.outcome = Outcome(self.campaign.id, [])
        self.analyzer.on_labelled = self._labelled
        # one analysis for both stations: runs are labelled, and then fitted, in the order they closed
        self.analysis = AnalysisCallback(self.analyzer, on_done=self.results.on_done, in_background=True)
        for rig in lab.rigs.values():
            rig.RE.subscribe(self.analysis)
            if runner.kill_points.armed:
                rig.RE.subscribe(runner.kill_points.document)
        self._records_written = 0
        #: why each sample whose plan failed failed, known as its run ends (before its ledger entry is)
        self._plan_errors: dict[str, str] = {}
        self.prediction = MapPrediction(self.agent, runner.grid, runner.truth_labels)
        self.accounting = Accounting(
            self.campaign,
            lab.rigs,
            self.breaker,
            self.prediction,
            entries=self.entries,
            plan_errors=self._plan_errors,
            outcome=self.outcome,
            stop_requested=runner.stop_requested,
            accuracy_every=runner.accuracy_every,
        )

    # -- the loop ---------------------------------------------------------------------------------

    def run(self) -> Outcome:
        started = time.perf_counter()
        try:
            reason = self._loop()
        finally:
            # whatever stopped the loop, every sample that ran gets its result into Tiled and the ledger
            self.completion.drain(self.analysis, self.entries)
        self._report_progress()  # every sample is durable now: the display ends on the final counts
        self.outcome.loop_s = time.perf_counter() - started
        self.outcome.entries = list(self.entries.values())
        self.outcome.stop_reason = reason
        logger.info("campaign %s stopped: %s", self.campaign.id, reason)
        return self.outcome

    def _loop(self) -> str:
        redo = self._restore() if self.runner.resume else []
        self.freed_at = {sid: rig.clock.now_s for sid, rig in self.lab.rigs.items()}
        for entry in redo:
            if not self.outage.store_answers():
                return STOPPED_IN_OUTAGE
            self._run_sample(entry, started=time.perf_counter())
        while (reason := self.accounting.stop_reason()) is None:
            started = time.perf_counter()
            self.completion.harvest(self.entries)
            rig = self._next_station()
            if rig is None:
                return "every station has used its beamtime"
            self._reveal(rig.clock.now_s)
            decided = self._decide(rig)
            if decided is None:
                return f"the agent has nothing to suggest for {rig.id}"
            self.runner.kill_points.passed("decided")
            # no sample is prepared that could not be recorded: an outage pauses the loop here
            if not self.outage.store_answers():
                return STOPPED_IN_OUTAGE
            self._run_sample(decided, started=started)
        self._reveal(math.inf)
        return reason

    def _labelled(self, record: AnalysisRecord) -> None:
        self.results.on_labelled(record)
        self.runner.kill_points.passed("analysed")

    def _next_station(self) -> StationRig | None:
        """The station free first, by station time; a set-aside station is free once its pause is over.

        A station is free from the end of its last sample: on the twin that is its virtual clock (which
        moves only as the station works), on real stations the wall-clock end, so the station whose
        sample finished first is next; `idle_until` then jumps a virtual clock, or waits on the wall.
        """
        free = [
            rig
            for sid, rig in self.lab.rigs.items()
            if (limit := self.campaign.stations[sid].spec.max_hours) is None or rig.clock.now_s < limit * 3600
        ]
        health = self.breaker.health(0.0)

        def free_at(rig: StationRig) -> float:
            freed = self.freed_at[rig.id]
            if self.breaker.may_send(rig.id, freed):
                return freed
            retry_at = health[rig.id].retry_at_s
            return max(freed, retry_at if retry_at is not None else math.inf)

        rig = min(free, key=lambda r: (free_at(r), r.id), default=None)
        if rig is None or math.isinf(free_at(rig)):
            return None
        rig.clock.idle_until(free_at(rig))  # a set-aside station sat idle through its pause
        self.breaker.sent(rig.id, rig.clock.now_s)
        return rig

    def _decide(self, rig: StationRig) -> LedgerEntry | None:
        pending_suggestions = [entry_suggestion(self.campaign, r.entry, self.agent.name) for r in self.hidden]
        with self.timer.timed("agent"):
            suggestions = self.agent.suggest(rig.id, 1, pending_suggestions)
        self.prediction.forget()
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
            rig.write_in_order(functools.partial(self._record_decision, records, entry))
        return entry

    def _record_decision(self, records: Sequence[DecisionRecord], entry: LedgerEntry) -> None:
        write_records(self.ledger.decisions, records)
        self.ledger.add(entry)

    def _run_sample(self, entry: LedgerEntry, *, started: float) -> None:
        """Run the sample's plan, then hand its results over to the background; `started`: when the loop
        began working on it (its decision included)."""
        rig = self.lab.rigs[entry.station]
        start_s = rig.clock.now_s
        first_interval = len(rig.clock.timeline)
        self.results.forget(entry.sample_uid)
        with self.timer.timed("plans"):  # the RunEngine only hands its documents to the writer and analysis
            try:
                self.plans.run(rig, entry)
                error = None
            except Exception as exc:  # a failed sample is recorded and the campaign goes on
                logger.warning("sample %s on %s failed: %s", entry.sample_uid, entry.station, exc)
                error = f"{type(exc).__name__}: {exc}"
                self._plan_errors[entry.sample_uid] = error
        self.freed_at[entry.station] = rig.clock.now_s
        self.accounting.station_ran(entry.station, error, rig.clock.now_s)
        ran = replace(
            entry,
            start_s=start_s,
            end_s=rig.clock.now_s,
            inventory=deck_inventory(rig),
            activities=activities(rig.clock.timeline[first_interval:]),
            campaign_station_hours=self.accounting.station_hours(),
        )
        self.entries[ran.sample_uid] = ran
        if self.accounting.accuracy_due(len(self.entries)):
            with self.timer.timed("progress"):
                ran = replace(ran, accuracy=self.accounting.record_accuracy())
        self.entries[ran.sample_uid] = ran
        analysed = self.analysis.barrier()
        self.results.watch(analysed)
        written = rig.writer.barrier() if rig.writer is not None else resolved()
        timings = self.timer.take()
        timings["loop"] = time.perf_counter() - started
        flight = InFlight(ran, error, analysed, written, timings)
        self.hidden.append(flight)
        self.completion.submit(flight)
        self._report_progress()

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
                record = self.results.wait(
                    flight.entry.sample_uid, flight.analysed, complete=self.completion.needs_fits
                )
                if record is not None:  # a failed analysis too: the agent keeps a note of what it skips
                    results.append((record, agent_observation(self.campaign, record, flight.entry.end_s)))
        if results:
            with self.timer.timed("phases"):
                observations = self.phases.learn(results)
            with self.timer.timed("agent"):
                self.agent.tell(observations)
            self.prediction.forget()

    def _report_progress(self) -> None:
        """Show the samples that are durable (run, analysis and ledger entry in Tiled), as the report will."""
        if self.runner.on_progress is None:
            return
        self.completion.harvest(self.entries)
        self.runner.on_progress(self.accounting.progress())

    def _restore(self) -> list[LedgerEntry]:
        """Rebuild clocks, inventories and the agent from the ledger; return the samples to run (again)."""
        settled, redo = settle_ledger(self.campaign.id, self.ledger, self.catalog, self.analyzer)
        self.entries.update(settled)
        restore_stations(self.campaign, self.lab.rigs, self.entries.values())
        records = {r.run_uid: r for r in AnalysisStore(self.client).records(campaign_id=self.campaign.id)}
        self.phases.restore(dict(self.ledger.phase_state()))
        self.agent.tell(self.phases.learn(results_of(self.campaign, list(self.entries.values()), records)))
        self.prediction.forget()
        logger.info(
            "resumed campaign %s: %d samples done, %d to run again",
            self.campaign.id,
            len(self.entries),
            len(redo),
        )
        return redo


__all__ = [
    "CampaignRunner",
]
