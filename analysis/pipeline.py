"""The analysis pipeline: raw run in Tiled → reduced curve, features, fits, label → analysed node in Tiled.

`Analyzer.analyze(run_uid)` does one run; `Analyzer.catch_up()` every closed run
without a complete analysed node; `Analyzer.follow()` keeps doing that as runs
arrive (the `tandem analyze --follow` worker); `AnalysisCallback` does it in the
RunEngine's process after each run. Whatever goes wrong with one run's data
becomes a failed analysed node with the reason — the worker carries on.

What a run must hold (the station plans write it, see `tandem.plans.measurement`):
the detector geometry in the start document, frames in the `primary` stream
with the incident and transmitted monitor counts of each exposure, and
either an `empty_cell` stream or an earlier `measure_empty_cell` run of the same
station and geometry. What it cannot hold — the detector efficiency, the
monitor ratio of the open beam, the cell's path length, the counter depth — is
the station's `StationCalibration` (from the start document's ``calibration``
if the plan recorded one, else from the settings).

The parts: what a run holds and how it is read (`tandem.analysis.raw_runs`), the empty cell each run
is reduced against (`tandem.analysis.empty_cells`), the calibrations and settings
(`tandem.analysis.pipeline_settings`), the callback (`tandem.analysis.pipeline_callback`); here, one
run's analysis in its two stages, and the backlog. Import the pipeline from here.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import tandem
from tandem.analysis.claims import RunClaims
from tandem.analysis.curves import Curve
from tandem.analysis.empty_cells import EmptyCells
from tandem.analysis.failures import AnalysisError, FailureCode
from tandem.analysis.features import Features, extract_features
from tandem.analysis.fitting import fit_models
from tandem.analysis.labels import LabelInput, assign_labels
from tandem.analysis.pipeline_settings import AnalysisSettings, StationCalibration
from tandem.analysis.raw_runs import (
    SAMPLE_STREAM,
    DocumentRun,
    RunLike,
    run_composition,
    run_probe,
    stream_exposure,
)
from tandem.analysis.reduction import geometry_from_metadata, reduce_exposure
from tandem.analysis.run_feed import RunFeed
from tandem.analysis.store import AnalysisRecord, AnalysisStore, FitStatus
from tandem.catalog import Catalog
from tandem.errors import TandemError
from tandem.observations import AnalysisStatus
from tandem.run_documents import ExitStatus, RunDataError

if TYPE_CHECKING:
    from tiled.client.container import Container

__all__ = [
    "ANALYSIS_VERSION",
    "Analyzer",
    "PendingAnalysis",
]

logger = logging.getLogger(__name__)

#: stamped on every analysed node, with the parameters
ANALYSIS_VERSION = f"tandem-analysis {tandem.__version__}"


def _notify(hook: Callable[[AnalysisRecord], None] | None, record: AnalysisRecord) -> None:
    if hook is None:
        return
    try:
        hook(record)
    except Exception:  # a consumer's bug must not lose the analysis
        logger.exception("a hook failed for the record of run %s", record.run_uid)


@dataclass(frozen=True)
class PendingAnalysis:
    """A run reduced and labelled, its node not yet written: what `Analyzer.write_and_fit` takes.

    `record` is final when its analysis failed or it is not to be fitted (`fits_pending` is False);
    `features` are what the fits start from (None when there is nothing to fit).
    """

    record: AnalysisRecord
    features: Features | None


class Analyzer:
    """Analyses raw runs of one Tiled catalog into analysed nodes of the same catalog.

    One run's analysis has two stages. `reduce_and_label` reduces the frames, extracts the
    features and labels the curve, and writes nothing; `write_and_fit` writes the node with its
    fits pending, fits the models and completes the node (see `tandem.analysis.store`), so the
    label is readable in Tiled well before the slowest step. `analyze` does both. A label is a
    property of its own curve (`tandem.analysis.labels`), so the first stage of a run needs
    nothing from any earlier run's second stage: a caller may run the stages in two threads and
    have the labels of later runs while earlier ones are still being fitted (`AnalysisCallback`).

    `on_labelled` is called at the end of the first stage with the record as it then stands
    (labelled, or failed, or complete when there is nothing to fit), before anything is written:
    for a consumer in the same process that needs only the label (the campaign's agent) and does
    not rely on the node being in Tiled yet. `on_readable` is called once the node with its fits
    pending is in Tiled; what `analyze` and `write_and_fit` return is the complete record.
    """

    def __init__(
        self,
        client: Container,
        settings: AnalysisSettings | None = None,
        *,
        on_readable: Callable[[AnalysisRecord], None] | None = None,
        on_labelled: Callable[[AnalysisRecord], None] | None = None,
        claims: RunClaims | None = None,
    ) -> None:
        self.settings = settings or AnalysisSettings()
        #: with claims, `catch_up` analyses only the runs this worker claims, so that several
        #: workers share the stream of runs (`tandem.analysis.claims`)
        self.claims = claims
        self.on_readable = on_readable
        self.on_labelled = on_labelled
        self.catalog = Catalog(client)
        self.store = AnalysisStore(client)
        self._feed = RunFeed(self.catalog, self.store)
        self._empty_cells = EmptyCells(self.catalog)
        # one run at a time through `analyze` (no two writers of one node); the reduction stage has a
        # lock of its own (its empty-cell cache), so that it may run while another run is being fitted
        self._lock = threading.Lock()
        self._reduction_lock = threading.Lock()

    # -- one run ---------------------------------------------------------------------------------

    def analyze(self, run_uid: str, *, force: bool = False) -> AnalysisRecord:
        """Analyse one run (unless it already has a complete node and not `force`); return its record."""
        with self._lock:
            if not force:
                existing = self.store.get(run_uid, with_curve=False)
                if existing is not None:
                    return existing
            return self._analyze_and_store(self.catalog.run(run_uid))

    def remember_reference(self, run: RunLike) -> bool:
        """Keep an empty-cell run this process just measured (from its documents): the runs after it at
        the same station and geometry use it without looking it up in Tiled. False if it is not one."""
        return self._empty_cells.remember(run)

    def analyze_documents(self, run: DocumentRun) -> AnalysisRecord:
        """Analyse a run from its documents (the in-process path) and store the result."""
        with self._lock:
            return self._analyze_and_store(run)

    def _analyze_and_store(self, run: RunLike) -> AnalysisRecord:
        return self.write_and_fit(self.reduce_and_label(run))

    def reduce_and_label(self, run: RunLike) -> PendingAnalysis:
        """The first stage: reduction, features and label, nothing written; then `on_labelled`.

        Whatever goes wrong with the run's data makes a failed record, not an exception.
        """
        with self._reduction_lock:
            record, features = self._analyze(run)
        _notify(self.on_labelled, record)
        return PendingAnalysis(record, features if record.fits_pending else None)

    def write_and_fit(self, pending: PendingAnalysis) -> AnalysisRecord:
        """The second stage: the node written (fits pending: `on_readable`), fitted, completed.

        Returns the complete record. Raises only when the store itself fails.
        """
        record = pending.record
        features = pending.features
        if features is None or not record.fits_pending:
            self.store.put(record)
            return record
        # The fits are CPU and the node's writes mostly wait for the server: the models are fitted in a
        # thread of their own while the node is written (the fits are still stored only after it).
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="analysis-fit-models") as pool:
            fitted = pool.submit(self._fit, record, features)
            self.store.put(record)
            _notify(self.on_readable, record)
            record = fitted.result()
        self.store.finish(record)
        return record

    def _fit(self, record: AnalysisRecord, features: Features) -> AnalysisRecord:
        """The record with its fits, or failed (`fit_not_converged`, ...) with the reason."""
        try:
            if record.curve is None:
                raise AnalysisError(FailureCode.INTERNAL, "a record without a curve cannot be fitted")
            fits = fit_models(record.curve, features, self.settings.fitting)
            return replace(record, fits=fits.to_dict(), fits_status=FitStatus.DONE)
        except AnalysisError as exc:
            code, reason = exc.code.value, exc.message
        except Exception as exc:  # a bug must not stop the worker: record it and go on
            logger.exception("model fits of run %s failed unexpectedly", record.run_uid)
            code, reason = FailureCode.INTERNAL.value, f"{type(exc).__name__}: {exc}"
        # A failed analysis is not data: it loses its label (the curve stays in the node, for whoever
        # wants to see what no model describes).
        return replace(
            record,
            status=AnalysisStatus.FAILED,
            failure_code=code,
            failure_reason=reason,
            fits_status=FitStatus.FAILED,
            label=None,
            label_probabilities={},
        )

    def _base_record(self, run: RunLike) -> AnalysisRecord:
        try:
            exposure_s = float(run.scan.exposure_s) * int(run.scan.n_frames)
        except RunDataError:
            exposure_s = math.nan
        finished = run.stop.get("finished_at_s") if run.stop else None
        return AnalysisRecord(
            run_uid=run.uid,
            status=AnalysisStatus.OK,
            analysis_version=ANALYSIS_VERSION,
            parameters=self.settings.to_dict(),
            sample_uid=run.sample_uid,
            campaign_id=run.campaign_id,
            decision_uid=run.decision_uid,
            station=run.station,
            probe=run_probe(run),
            composition=run_composition(run, self.settings.solvent_names),
            exposure_s=exposure_s,
            finished_at_s=float(finished) if isinstance(finished, int | float) else None,
        )

    def _analyze(self, run: RunLike) -> tuple[AnalysisRecord, Features | None]:
        """Reduction, features and label (the fits come later, `_fit`); the features, when there are any."""
        base = self._base_record(run)
        try:
            if run.exit_status is not ExitStatus.SUCCESS:
                status = run.exit_status.value if run.exit_status else "still open"
                raise AnalysisError(
                    FailureCode.MISSING_DATA,
                    f"the run did not succeed ({status}): {run.reason or 'no reason given'}",
                )
            calibration = self._calibration(run)
            base = replace(base, parameters={**base.parameters, "calibration": calibration.to_dict()})
            curve = self.reduce(run, calibration)
            features = extract_features(curve, self.settings.features)
            fits_status = FitStatus.PENDING if self.settings.fit else FitStatus.NOT_RUN
            record = replace(base, curve=curve, features=features.to_dict(), fits_status=fits_status)
            return self._label(record), features
        except AnalysisError as exc:
            return replace(
                base, status=AnalysisStatus.FAILED, failure_code=exc.code.value, failure_reason=exc.message
            ), None
        except (RunDataError, TandemError) as exc:
            return replace(
                base,
                status=AnalysisStatus.FAILED,
                failure_code=FailureCode.MISSING_DATA.value,
                failure_reason=str(exc),
            ), None
        except Exception as exc:  # a bug must not stop the worker: record it and go on
            logger.exception("analysis of run %s failed unexpectedly", run.uid)
            return replace(
                base,
                status=AnalysisStatus.FAILED,
                failure_code=FailureCode.INTERNAL.value,
                failure_reason=f"{type(exc).__name__}: {exc}",
            ), None

    def _calibration(self, run: RunLike) -> StationCalibration:
        recorded = run.start.get("calibration")
        if isinstance(recorded, Mapping):
            return StationCalibration.from_dict(recorded)
        station = run.station or ""
        if station in self.settings.calibrations:
            return self.settings.calibrations[station]
        raise AnalysisError(
            FailureCode.MISSING_DATA,
            f"no calibration for station {station!r}: the run records none and the analysis settings know "
            f"{', '.join(sorted(self.settings.calibrations)) or 'no station'}",
        )

    def reduce(self, run: RunLike, calibration: StationCalibration) -> Curve:
        """The run's I(q) in 1/cm, less its empty cell when one is found."""
        geometry = geometry_from_metadata(run.start.get("geometry"))
        sample = stream_exposure(run, SAMPLE_STREAM, calibration)
        empty = self._empty_cells.exposure_for(run, geometry.to_dict(), calibration)
        curve = reduce_exposure(
            sample,
            geometry,
            thickness_mm=calibration.path_length_mm,
            empty_cell=empty,
            settings=self.settings.reduction,
        )
        return Curve(
            curve.q_inv_a,
            curve.intensity_per_cm,
            curve.sigma_per_cm,
            curve.dq_inv_a,
            {**curve.metadata, "transmission": sample.transmission},
        )

    # -- labels ----------------------------------------------------------------------------------

    def _label(self, record: AnalysisRecord) -> AnalysisRecord:
        """The record with its label: the structure its own curve shows.

        A label never depends on other runs (`tandem.analysis.labels.assign_labels`: names are
        properties of curves and never move), so a run is labelled alone: no search of the
        campaign's records, and nothing waits for earlier runs' nodes to be in Tiled.
        """
        if record.curve is None:
            return record
        item = LabelInput(record.run_uid, record.probe or "", record.composition, record.curve)
        result = assign_labels([item], settings=self.settings.labels)
        return replace(
            record,
            label=result.labels[record.run_uid],
            label_probabilities=result.probabilities[record.run_uid],
        )

    # -- many runs -------------------------------------------------------------------------------

    def pending(self) -> list[str]:
        """Closed sample runs without a complete analysed node, oldest first (each call reads only
        the runs made since the last and those still waiting: `tandem.analysis.run_feed`)."""
        return self._feed.pending()

    def catch_up(self, *, on_done: Callable[[AnalysisRecord], None] | None = None) -> int:
        """Analyse every pending run; return how many were analysed."""
        n = 0
        for uid in self.pending():
            try:
                held = self._claimed(uid)
                if held is None:
                    continue  # another worker has it
                with held:
                    record = self.analyze(uid)
            except Exception:
                # the data store itself failed (the run's data problems are records, not exceptions):
                # leave the run pending, it is tried again on the next pass
                logger.exception("could not analyse run %s; will retry", uid)
                continue
            n += 1
            if on_done is not None:
                on_done(record)
        return n

    def _claimed(self, run_uid: str) -> contextlib.AbstractContextManager[object] | None:
        """A context that holds this worker's claim on `run_uid`; None if another worker holds it."""
        if self.claims is None:
            return contextlib.nullcontext()
        claim = self.claims.claim(run_uid)
        return None if claim is None else self.claims.held(claim)

    def follow(
        self,
        *,
        poll_interval_s: float = 0.5,
        stop: threading.Event | None = None,
        on_done: Callable[[AnalysisRecord], None] | None = None,
    ) -> None:
        """Catch up, then keep analysing new runs as they close, until `stop` is set."""
        stop = stop or threading.Event()
        while not stop.is_set():
            if self.catch_up(on_done=on_done) == 0:
                stop.wait(poll_interval_s)
