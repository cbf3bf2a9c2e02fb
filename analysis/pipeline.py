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
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

import tandem
from tandem.analysis.curves import Curve
from tandem.analysis.failures import AnalysisError, FailureCode
from tandem.analysis.features import Features, FeatureSettings, extract_features
from tandem.analysis.fitting import FitSettings, fit_models
from tandem.analysis.labels import LabelInput, LabelSettings, assign_labels
from tandem.analysis.reduction import Exposure, ReductionSettings, geometry_from_metadata, reduce_exposure
from tandem.analysis.store import AnalysisRecord, AnalysisStore, FitStatus
from tandem.catalog import Catalog, ExitStatus, RunDataError, RunDocuments
from tandem.errors import TandemError
from tandem.observations import AnalysisStatus
from tandem.stations import SANS, SAXS, Probe
from tandem.suggestions import ScanParameters

if TYPE_CHECKING:
    from tiled.client.container import Container

logger = logging.getLogger(__name__)

#: stamped on every analysed node, with the parameters
ANALYSIS_VERSION = f"tandem-analysis {tandem.__version__}"
#: plans whose runs are inputs to others' analysis, not samples
#: plans whose primary stream holds a sample's scattering frames: the runs analysis reduces (references
#: such as empty-cell and transmission runs, and the robot's prepare/load/rinse runs, are not analysed)
SCATTERING_PLANS = ("sample_plan", "measure_sample")
#: the plan whose run is the empty cell of the runs that follow it (same station and geometry)
EMPTY_CELL_PLAN = "measure_empty_cell"
EMPTY_CELL_STREAM = "empty_cell"
#: empty-cell exposures kept in memory (frames are megabytes; a campaign uses one per detector set-up)
EMPTY_CELL_CACHE_SIZE = 8
SAMPLE_STREAM = "primary"


class InvalidCalibrationError(TandemError, ValueError):
    """A station calibration that no instrument could have."""


@dataclass(frozen=True)
class StationCalibration:
    """What turns a station's counts into 1/cm and is not in each run.

    `open_beam_ratio` is transmitted/incident monitor counts with nothing in the
    beam (the diode's or attenuator's fraction), so that a measured ratio divided
    by it is the transmission; `detector_efficiency` is the fraction of
    scattered quanta counted; `path_length_mm` the sample thickness in the cell;
    `saturation_counts` the counter depth (None: no ceiling);
    `empty_cell_transmission` is used when an empty-cell measurement did not
    record its own monitor ratio.
    """

    detector_efficiency: float = 1.0
    open_beam_ratio: float = 1.0
    path_length_mm: float = 1.0
    saturation_counts: float | None = None
    empty_cell_transmission: float | None = None

    def __post_init__(self) -> None:
        for name in ("detector_efficiency", "open_beam_ratio", "path_length_mm"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise InvalidCalibrationError(f"calibration: {name} must be a positive number, got {value!r}")
        if self.detector_efficiency > 1:
            raise InvalidCalibrationError(f"detector efficiency is at most 1, got {self.detector_efficiency}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "detector_efficiency": self.detector_efficiency,
            "open_beam_ratio": self.open_beam_ratio,
            "path_length_mm": self.path_length_mm,
            "saturation_counts": self.saturation_counts,
            "empty_cell_transmission": self.empty_cell_transmission,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StationCalibration:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidCalibrationError(
                f"unknown calibration keys {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        return cls(**dict(data))


@dataclass(frozen=True)
class AnalysisSettings:
    reduction: ReductionSettings = field(default_factory=ReductionSettings)
    features: FeatureSettings = field(default_factory=FeatureSettings)
    fitting: FitSettings = field(default_factory=FitSettings)
    labels: LabelSettings = field(default_factory=LabelSettings)
    calibrations: Mapping[str, StationCalibration] = field(default_factory=dict)
    #: components that are a station's solvent: not coordinates of composition space
    solvent_names: tuple[str, ...] = ("H2O", "D2O")
    #: whether to fit models (the slowest step) at all
    fit: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "reduction": self.reduction.to_dict(),
            "features": {k: getattr(self.features, k) for k in self.features.__dataclass_fields__},
            "fitting": self.fitting.to_dict(),
            "labels": self.labels.to_dict(),
            "solvent_names": list(self.solvent_names),
        }


class RunLike(Protocol):
    """What analysis reads from a run: `tandem.catalog.RawRun` (from Tiled) or `DocumentRun` (from the
    documents of a run that just finished, in the RunEngine's process)."""

    @property
    def uid(self) -> str: ...
    @property
    def start(self) -> dict[str, Any]: ...
    @property
    def stop(self) -> dict[str, Any] | None: ...
    @property
    def time(self) -> float: ...
    @property
    def station(self) -> str | None: ...
    @property
    def plan_name(self) -> str | None: ...
    @property
    def sample_uid(self) -> str | None: ...
    @property
    def campaign_id(self) -> str | None: ...
    @property
    def decision_uid(self) -> str | None: ...
    @property
    def realized(self) -> dict[str, Any] | None: ...
    @property
    def target(self) -> dict[str, Any] | None: ...
    @property
    def scan(self) -> ScanParameters: ...
    @property
    def exit_status(self) -> ExitStatus | None: ...
    @property
    def reason(self) -> str: ...
    @property
    def streams(self) -> tuple[str, ...]: ...
    @property
    def node(self) -> Any: ...


class _Field:
    def __init__(self, rows: list[Any]) -> None:
        self._rows = rows

    def read(self) -> np.ndarray:
        return np.asarray(self._rows)


class _Stream:
    def __init__(self, data_keys: Mapping[str, Any]) -> None:
        self.metadata = {"data_keys": dict(data_keys)}
        self.rows: dict[str, list[Any]] = {k: [] for k in data_keys}

    def __getitem__(self, key: str) -> _Field:
        return _Field(self.rows[key])


class DocumentRun(RunDocuments):
    """A run assembled from its Bluesky documents (start, descriptors, events, stop), read like a `RawRun`.

    The in-process callback analyses from these, so that it need not read back from Tiled the frames
    the RunEngine has just produced.
    """

    def __init__(self, start: Mapping[str, Any]) -> None:
        self.start = dict(start)
        self.stop = None
        self._streams: dict[str, _Stream] = {}
        self._descriptors: dict[str, str] = {}

    def add(self, name: str, doc: Mapping[str, Any]) -> None:
        if name == "descriptor":
            stream = str(doc.get("name", SAMPLE_STREAM))
            self._descriptors[str(doc["uid"])] = stream
            self._streams.setdefault(stream, _Stream(doc.get("data_keys") or {}))
        elif name == "event":
            self._append(doc["descriptor"], doc["data"])
        elif name == "event_page":
            n = len(doc.get("seq_num") or ())
            for i in range(n):
                self._append(doc["descriptor"], {k: v[i] for k, v in doc["data"].items()})
        elif name == "stop":
            self.stop = dict(doc)

    def _append(self, descriptor: str, data: Mapping[str, Any]) -> None:
        stream = self._streams[self._descriptors[descriptor]]
        for key, value in data.items():
            stream.rows.setdefault(key, []).append(value)

    @property
    def streams(self) -> tuple[str, ...]:
        return tuple(self._streams)

    @property
    def node(self) -> Mapping[str, _Stream]:
        return self._streams


def _monitor_field(keys: Mapping[str, Any], suffix: str) -> str | None:
    matches = [k for k in keys if k.endswith(suffix)]
    return matches[0] if len(matches) == 1 else None


def _stream_exposure(
    run: RunLike, stream: str, calibration: StationCalibration, fixed_transmission: float | None = None
) -> Exposure:
    """The frames of `stream`, summed, with their monitor counts and transmission."""
    # One handle on the stream for all its fields: every lookup through the run is an HTTP request.
    if stream not in run.streams:
        raise AnalysisError(FailureCode.MISSING_DATA, f"run {run.uid} has no stream {stream!r}")
    node = run.node[stream]
    keys: Mapping[str, Any] = node.metadata.get("data_keys") or {}
    images = [k for k, v in keys.items() if len(v.get("shape") or ()) == 2]
    if len(images) != 1:
        raise AnalysisError(
            FailureCode.MISSING_DATA,
            f"stream {stream!r} of run {run.uid} holds {len(images)} image fields; analysis needs one",
        )
    incident_key = _monitor_field(keys, "incident_counts")
    transmitted_key = _monitor_field(keys, "transmitted_counts")
    if incident_key is None:
        raise AnalysisError(
            FailureCode.MISSING_DATA, f"stream {stream!r} of run {run.uid} records no incident monitor counts"
        )
    frames = np.asarray(node[images[0]].read())
    if frames.ndim == 2:
        frames = frames[np.newaxis]
    incident = float(np.sum(node[incident_key].read()))
    if fixed_transmission is not None:
        transmission = fixed_transmission
    else:
        if transmitted_key is None:
            raise AnalysisError(
                FailureCode.MISSING_DATA, f"stream {stream!r} of run {run.uid} records no transmitted counts"
            )
        transmitted = float(np.sum(node[transmitted_key].read()))
        ratio = transmitted / incident if incident > 0 else math.nan
        transmission = ratio / calibration.open_beam_ratio
    exposure_s = float(run.scan.exposure_s) * frames.shape[0] if "scan" in run.start else math.nan
    return Exposure(
        counts=frames,
        exposure_s=exposure_s if math.isfinite(exposure_s) else 1.0,
        # the counts hold the detector's efficiency: fold it into the normalisation
        incident_counts=incident * calibration.detector_efficiency,
        transmission=transmission,
        saturation_counts=calibration.saturation_counts,
    )


def _composition(run: RunLike, solvents: tuple[str, ...]) -> dict[str, float]:
    realized = run.realized or run.target or {}
    fractions = realized.get("mass_fraction", realized)
    solvent = run.start.get("solvent")
    skip = set(solvents) | ({solvent} if isinstance(solvent, str) else set())
    out: dict[str, float] = {}
    for name, value in (fractions or {}).items():
        if name in skip:
            continue
        try:
            out[str(name)] = float(value)
        except (TypeError, ValueError):
            continue
    return out


def _notify(hook: Callable[[AnalysisRecord], None] | None, record: AnalysisRecord) -> None:
    if hook is None:
        return
    try:
        hook(record)
    except Exception:  # a consumer's bug must not lose the analysis
        logger.exception("a hook failed for the record of run %s", record.run_uid)


def _geometry_key(geometry: Any) -> str:
    """A hashable form of a geometry as recorded in a start document (runs match on equal geometry)."""
    return json.dumps(geometry, sort_keys=True, default=str)


def _probe(run: RunLike) -> str | None:
    probe = run.start.get("probe")
    if isinstance(probe, str) and probe in {p.value for p in Probe}:
        return probe
    return {SAXS: Probe.XRAY.value, SANS: Probe.NEUTRON.value}.get(run.station or "")


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
    ) -> None:
        self.settings = settings or AnalysisSettings()
        self.on_readable = on_readable
        self.on_labelled = on_labelled
        self.catalog = Catalog(client)
        self.store = AnalysisStore(client)
        # empty cells: the newest this process measured, by station and geometry (documents it saw), and
        # the exposures read from Tiled by run uid (a closed run does not change) — so that each sample
        # needs neither a search for its empty cell nor a read of its megabyte frames
        self._references: dict[tuple[str, str], RunLike] = {}
        # its own lock: the RunEngine's thread adds references while a run is being analysed
        self._references_lock = threading.Lock()
        self._empty_exposures: OrderedDict[tuple[str, StationCalibration, float | None], Exposure] = (
            OrderedDict()
        )
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
        if run.plan_name != EMPTY_CELL_PLAN or run.exit_status is not ExitStatus.SUCCESS:
            return False
        if not run.station or EMPTY_CELL_STREAM not in run.streams or "geometry" not in run.start:
            return False
        try:
            geometry = geometry_from_metadata(run.start["geometry"]).to_dict()
        except (TandemError, TypeError, ValueError):
            return False
        key = (run.station, _geometry_key(geometry))
        with self._references_lock:
            known = self._references.get(key)
            if known is None or known.time <= run.time:
                self._references[key] = run
        return True

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
            probe=_probe(run),
            composition=_composition(run, self.settings.solvent_names),
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
        sample = _stream_exposure(run, SAMPLE_STREAM, calibration)
        empty = self._empty_cell(run, geometry.to_dict(), calibration)
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

    def _empty_cell(
        self, run: RunLike, geometry: Mapping[str, Any], calibration: StationCalibration
    ) -> Exposure | None:
        source: RunLike | None = run if EMPTY_CELL_STREAM in run.streams else None
        if source is None and run.station:
            # one this process measured is the newest there is (a later one would have come through here)
            with self._references_lock:
                known = self._references.get((run.station, _geometry_key(geometry)))
            source = known if known is not None and known.time <= run.time else None
        if source is None and run.station:
            for candidate in self.catalog.runs(
                station=run.station, plan_name=EMPTY_CELL_PLAN, exit_status=ExitStatus.SUCCESS, limit=20
            ):
                if candidate.time <= run.time and candidate.start.get("geometry") == dict(geometry):
                    source = candidate
                    break
        if source is None:
            return None
        try:
            return self._empty_exposure(source, calibration, None)
        except AnalysisError:
            if calibration.empty_cell_transmission is None:
                raise
            # an empty cell measured without its own transmission: the calibrated one will do
            return self._empty_exposure(source, calibration, calibration.empty_cell_transmission)

    def _empty_exposure(
        self, source: RunLike, calibration: StationCalibration, fixed_transmission: float | None
    ) -> Exposure:
        if source.stop is None:  # an open run may still grow: never cached
            return _stream_exposure(source, EMPTY_CELL_STREAM, calibration, fixed_transmission)
        key = (source.uid, calibration, fixed_transmission)
        cached = self._empty_exposures.get(key)
        if cached is None:
            cached = _stream_exposure(source, EMPTY_CELL_STREAM, calibration, fixed_transmission)
            self._empty_exposures[key] = cached
            while len(self._empty_exposures) > EMPTY_CELL_CACHE_SIZE:
                self._empty_exposures.popitem(last=False)
        else:
            self._empty_exposures.move_to_end(key)
        return cached

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
        """Closed sample runs without a complete analysed node, oldest first."""
        done = self.store.done_uids()
        out = []
        for run in self.catalog.runs(newest_first=False):
            if run.uid in done or not run.is_closed or run.plan_name not in SCATTERING_PLANS:
                continue
            out.append(run.uid)
        return out

    def catch_up(self, *, on_done: Callable[[AnalysisRecord], None] | None = None) -> int:
        """Analyse every pending run; return how many were analysed."""
        n = 0
        for uid in self.pending():
            try:
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
