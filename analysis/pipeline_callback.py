"""The analysis in the RunEngine's process: each run analysed from its own documents when it closes.

`AnalysisCallback` hands each closed run to an `Analyzer` (`tandem.analysis.pipeline`), in the
caller's thread or in two threads of its own, one per stage; `AnalysisSeconds` is the work it did
between two barriers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tandem.analysis.raw_runs import EMPTY_CELL_PLAN, SCATTERING_PLANS, DocumentRun
from tandem.analysis.store import AnalysisRecord

if TYPE_CHECKING:
    # for the annotations only: `tandem.analysis.pipeline` exports this callback, so importing it at
    # run time would be circular
    from tandem.analysis.pipeline import Analyzer, PendingAnalysis

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnalysisSeconds:
    """Seconds of analysis work between two barriers of an `AnalysisCallback`, by stage."""

    #: reduction, features and label (`Analyzer.reduce_and_label`)
    label_s: float = 0.0
    #: the node written, the model fits, the node completed (`Analyzer.write_and_fit`)
    fits_s: float = 0.0

    @property
    def total_s(self) -> float:
        return self.label_s + self.fits_s


class AnalysisCallback:
    """A RunEngine callback that analyses each run from its own documents when it closes.

    The frames are in the event documents, so nothing is read back from Tiled: an empty cell measured
    by the same RunEngine is kept from its documents too (`Analyzer.remember_reference`); one measured
    elsewhere is looked up in Tiled. Errors are logged, never raised: a failing analysis must not fail
    the measurement. Only runs of `SCATTERING_PLANS` are analysed (not references, not the robot's runs).

    `in_background`: the RunEngine goes on as soon as a run's documents are in, and each run's two
    stages run in two threads of the callback's own, one after the other in the order the runs
    closed: a labelling thread (reduction, features, label: `Analyzer.on_labelled` hears of it) and a
    fitting thread (the node written, fitted, completed; then `on_done`). The labels of later runs
    need not wait for the fits of earlier ones. `barrier()` tells when the runs handed over so far
    are done with both stages; `close()` finishes them and stops the threads.
    """

    def __init__(
        self,
        analyzer: Analyzer,
        on_done: Callable[[AnalysisRecord], None] | None = None,
        *,
        in_background: bool = False,
    ) -> None:
        self.analyzer = analyzer
        self.on_done = on_done
        self._runs: dict[str, DocumentRun] = {}
        self._run_of_descriptor: dict[str, str] = {}
        self._labeller: ThreadPoolExecutor | None = None
        self._fitter: ThreadPoolExecutor | None = None
        if in_background:
            # one thread per stage keeps each stage in run order (labels reach their consumer in order)
            self._labeller = ThreadPoolExecutor(max_workers=1, thread_name_prefix="analysis-label")
            self._fitter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="analysis-fits")
        # each written by its stage's thread only (or by the caller's, analysing in the foreground)
        self._label_busy_s = 0.0
        self._fits_busy_s = 0.0

    def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every run handed over so far has been through both stages."""
        self.barrier().result(timeout=timeout_s)

    def barrier(self) -> Future[AnalysisSeconds]:
        """A future that resolves once every run closed before this call has been analysed (and handed
        to `on_done`). Its result is the seconds of each stage since the previous barrier."""
        done: Future[AnalysisSeconds] = Future()
        if self._labeller is None:
            done.set_result(AnalysisSeconds(self._take_label_busy(), self._take_fits_busy()))
        else:
            # it passes through the labelling thread, then the fitting thread, behind the runs before it
            self._labeller.submit(self._pass_labelling, done)
        return done

    def close(self) -> None:
        """Analyse every run handed over, then stop the threads; later runs are analysed in the
        caller's thread."""
        labeller, fitter = self._labeller, self._fitter
        if labeller is None or fitter is None:
            return
        labeller.shutdown(wait=True)  # every run labelled, and its second stage queued
        fitter.shutdown(wait=True)
        self._labeller = self._fitter = None

    def _pass_labelling(self, done: Future[AnalysisSeconds]) -> None:
        label_s = self._take_label_busy()
        fitter = self._fitter
        if fitter is None:  # not while this thread runs: `close` stops this thread before that one
            done.set_result(AnalysisSeconds(label_s, self._take_fits_busy()))
        else:
            fitter.submit(lambda: done.set_result(AnalysisSeconds(label_s, self._take_fits_busy())))

    def _take_label_busy(self) -> float:
        busy, self._label_busy_s = self._label_busy_s, 0.0
        return busy

    def _take_fits_busy(self) -> float:
        busy, self._fits_busy_s = self._fits_busy_s, 0.0
        return busy

    def __call__(self, name: str, doc: Mapping[str, Any]) -> None:
        try:
            self._dispatch(name, doc)
        except Exception:
            logger.exception("analysis callback failed on a %s document", name)

    def _dispatch(self, name: str, doc: Mapping[str, Any]) -> None:
        if name == "start":
            if doc.get("plan_name") in (*SCATTERING_PLANS, EMPTY_CELL_PLAN):
                self._runs[str(doc["uid"])] = DocumentRun(doc)
            return
        if name == "descriptor":
            run = self._runs.get(str(doc["run_start"]))
            if run is not None:
                self._run_of_descriptor[str(doc["uid"])] = run.uid
                run.add(name, doc)
            return
        if name in ("event", "event_page"):
            uid = self._run_of_descriptor.get(str(doc["descriptor"]))
            if uid is not None:
                self._runs[uid].add(name, doc)
            return
        if name == "stop":
            run = self._runs.pop(str(doc["run_start"]), None)
            if run is None:
                return
            self._run_of_descriptor = {d: u for d, u in self._run_of_descriptor.items() if u != run.uid}
            run.add(name, doc)
            if run.plan_name == EMPTY_CELL_PLAN:
                self.analyzer.remember_reference(run)
                return
            if self._labeller is None:
                self._finish(run)
            else:
                self._labeller.submit(self._label_in_background, run)

    def _finish(self, run: DocumentRun) -> None:
        """Both stages in the caller's thread."""
        self._done(run.uid, self._write(self._label(run)))

    def _label(self, run: DocumentRun) -> PendingAnalysis:
        started = time.perf_counter()
        try:
            return self.analyzer.reduce_and_label(run)
        finally:
            self._label_busy_s += time.perf_counter() - started

    def _write(self, pending: PendingAnalysis) -> AnalysisRecord:
        started = time.perf_counter()
        try:
            return self.analyzer.write_and_fit(pending)
        finally:
            self._fits_busy_s += time.perf_counter() - started

    def _done(self, run_uid: str, record: AnalysisRecord) -> None:
        logger.info("analysed run %s: %s", run_uid, record.status.value)
        if self.on_done is not None:
            self.on_done(record)

    def _label_in_background(self, run: DocumentRun) -> None:
        try:
            pending = self._label(run)
        except Exception:
            logger.exception("could not analyse run %s", run.uid)
            return
        fitter = self._fitter
        if fitter is None:  # not while this thread runs: `close` stops this thread before that one
            self._write_in_background(pending)
        else:
            fitter.submit(self._write_in_background, pending)

    def _write_in_background(self, pending: PendingAnalysis) -> None:
        try:
            self._done(pending.record.run_uid, self._write(pending))
        except Exception:
            logger.exception("could not store or fit the analysis of run %s", pending.record.run_uid)
