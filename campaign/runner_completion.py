"""A sample's results on their way to Tiled, and its ledger entry completed once they are there.

When a sample's run is over the loop goes on at once: the run is handed to its
station's Tiled writer thread and to the analysis, whose two threads take the runs in
the order they closed (one labels them, the other writes their analysed nodes and fits
the models). `Results` holds the analysed records as those threads hand them over, for
a decision that waits on one. A completion thread (`Completion`) then marks each
sample's ledger entry measured or failed, one after the other in the order they ran,
only after its run is in Tiled and its analysed node complete: a campaign killed at any
point finds in the ledger no result that Tiled does not hold. Phase events go to the
ledger in the same thread, after the entries before them. `drain` waits for all of it
when the campaign stops.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
from collections.abc import Mapping, MutableMapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeoutError
from dataclasses import dataclass, field, replace
from typing import Any

from tandem.analysis.pipeline import Analyzer
from tandem.analysis.pipeline_callback import AnalysisCallback, AnalysisSeconds
from tandem.analysis.store import AnalysisRecord
from tandem.campaign.kill_points import KillPoints
from tandem.campaign.ledger import Ledger, LedgerEntry, SampleStatus
from tandem.campaign.runner_outage import StoreOutage
from tandem.catalog import Catalog, RawRun
from tandem.store_guard import is_store_unreachable

logger = logging.getLogger(__name__)

#: how often the final drain looks whether it was stopped during a store outage (seconds)
_DRAIN_POLL_S = 0.5


@dataclass
class InFlight:
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


class Results:
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


class Completion:
    """The ledger's completion thread: each sample's entry with its result, in the order they ran."""

    def __init__(
        self,
        ledger: Ledger,
        catalog: Catalog,
        analyzer: Analyzer,
        results: Results,
        *,
        outage: StoreOutage,
        kill_points: KillPoints,
        needs_fits: bool,
    ) -> None:
        self.ledger = ledger
        self.catalog = catalog
        self.analyzer = analyzer
        self.results = results
        self.outage = outage
        self.kill_points = kill_points
        #: the agent learns from fitted parameters, not only labels
        self.needs_fits = needs_fits
        self._completer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger")
        self._completions: list[Future[LedgerEntry]] = []
        self._phase_writes: list[Future[None]] = []

    def submit(self, flight: InFlight) -> None:
        self._completions.append(self._completer.submit(self._complete, flight))

    def record_phases(self, events: Sequence[dict[str, Any]], state: dict[str, Any]) -> None:
        """Phase events and state go to Tiled in the completion thread, after earlier entries."""
        self._phase_writes.append(self._completer.submit(self._write_phases, list(events), state))

    def _write_phases(self, events: list[dict[str, Any]], state: dict[str, Any]) -> None:
        self.outage.durably(lambda: self.ledger.record_phases(events, state))

    def harvest(self, entries: MutableMapping[str, LedgerEntry]) -> None:
        """Take into `entries` the ledger entries finished so far, in the order the samples ran."""
        while self._completions and self._completions[0].done():
            future = self._completions.pop(0)
            try:
                done = future.result()
            except Exception:
                logger.exception("a sample's ledger entry could not be completed")
                continue
            entries[done.sample_uid] = done

    def drain(self, analysis: AnalysisCallback, entries: MutableMapping[str, LedgerEntry]) -> None:
        """Wait until every sample that ran has its result in Tiled and the ledger; take them in."""
        analysis.close()
        for future in self._completions:
            while True:
                try:
                    future.result(timeout=_DRAIN_POLL_S)
                except FutureTimeoutError:
                    self.outage.give_up_if_stopped()
                    continue
                except Exception:
                    logger.exception("a sample's ledger entry could not be completed")
                break
        for write in self._phase_writes:
            try:
                write.result()
            except Exception:
                logger.exception("phase events could not be written to the ledger")
        self.harvest(entries)
        self._completer.shutdown(wait=True)

    def _complete(self, flight: InFlight) -> LedgerEntry:
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
                record = self.outage.durably(functools.partial(self._analyse_again, uid))
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
            reason=None if ok else (reason or failure(record)),
            timings_s=timings,
        )
        self.kill_points.passed("recorded")
        self.outage.durably(lambda: self.ledger.update(done))
        return done

    def _analyse_again(self, sample_uid: str) -> AnalysisRecord | None:
        runs = sample_runs(self.catalog, sample_uid)
        return self.analyzer.analyze(runs[0].uid) if runs else None


def sample_runs(catalog: Catalog, sample_uid: str) -> list[RawRun]:
    """The sample's runs of the sample plan in the catalog."""
    return [r for r in catalog.runs(sample_uid=sample_uid) if r.plan_name == "sample_plan"]


def resolved() -> Future[float]:
    """A barrier already passed (a rig that writes to Tiled as it runs)."""
    done: Future[float] = Future()
    done.set_result(0.0)
    return done


def failure(record: AnalysisRecord | None) -> str:
    """Why a sample has no good result, from its analysed record."""
    if record is None:
        return "no analysed result"
    return record.failure_reason or f"analysis {record.status.value}"
