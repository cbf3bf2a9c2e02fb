"""What analysis reads from a raw run: from Tiled or from its documents, its frames, composition and probe.

`RunLike` is what a run offers (`tandem.catalog.RawRun` from Tiled, `DocumentRun` from the documents
of a run that just finished); `stream_exposure` sums the frames of one of its streams with their
monitor counts and transmission; `run_composition` and `run_probe` read what was measured.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
from tiled.client.composite import CompositeClient
from tiled.structures.core import StructureFamily

from tandem.analysis.failures import AnalysisError, FailureCode
from tandem.analysis.pipeline_settings import StationCalibration
from tandem.analysis.reduction import Exposure
from tandem.run_documents import ExitStatus, RunDocuments
from tandem.stations import SANS, SAXS, Probe
from tandem.suggestions import ScanParameters

#: plans whose primary stream holds a sample's scattering frames: the runs analysis reduces (references
#: such as empty-cell and transmission runs, and the robot's prepare/load/rinse runs, are not analysed)
SCATTERING_PLANS = ("sample_plan", "measure_sample")
#: the plan whose run is the empty cell of the runs that follow it (same station and geometry)
EMPTY_CELL_PLAN = "measure_empty_cell"
EMPTY_CELL_STREAM = "empty_cell"
SAMPLE_STREAM = "primary"


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
    # Any: a Tiled BlueskyRun (`tandem.catalog_layout.TiledContainer`) for a `RawRun`, the streams as a
    # mapping for a `DocumentRun`; analysis uses only `[stream].metadata` and `[stream][field].read()`
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


def _read_fields(run_uid: str, name: str, stream: Any, keys: list[str]) -> dict[str, np.ndarray]:
    """The fields `keys` of one stream, each read whole.

    A Tiled event stream is a composite node: each frame field an array of its own, the scalar fields
    columns of one table. Looked up through the composite, a field costs three requests; here the parts
    are listed once and each part is read once (the table for all its wanted columns). A stream of
    documents (`DocumentRun`) is read field by field, from memory.
    """
    if not isinstance(stream, CompositeClient):
        try:
            return {k: np.asarray(stream[k].read()) for k in keys}
        except KeyError as exc:
            raise _no_data(run_uid, name, exc.args[0]) from None
    parts = stream.base
    fields: dict[str, np.ndarray] = {}
    for part, item in stream.get_contents().items():
        attributes = item["attributes"]
        if attributes["structure_family"] == StructureFamily.array and part in keys:
            fields[part] = np.asarray(parts[part].read())
        elif attributes["structure_family"] == StructureFamily.table:
            columns = [k for k in keys if k in attributes["structure"]["columns"]]
            if columns:
                table = parts[part].read(columns)
                fields |= {k: np.asarray(table[k]) for k in columns}
    missing = [k for k in keys if k not in fields]
    if missing:
        raise _no_data(run_uid, name, missing[0])
    return fields


def _no_data(run_uid: str, stream: str, key: str) -> AnalysisError:
    return AnalysisError(
        FailureCode.MISSING_DATA,
        f"stream {stream!r} of run {run_uid} describes field {key!r} but holds no data for it",
    )


def _monitor_field(keys: Mapping[str, Any], suffix: str) -> str | None:
    matches = [k for k in keys if k.endswith(suffix)]
    return matches[0] if len(matches) == 1 else None


def stream_exposure(
    run: RunLike, stream: str, calibration: StationCalibration, fixed_transmission: float | None = None
) -> Exposure:
    """The frames of `stream`, summed, with their monitor counts and transmission."""
    # One handle on the stream for all its fields: every lookup through the run is an HTTP request.
    try:
        node = run.node[stream]
    except KeyError:
        raise AnalysisError(FailureCode.MISSING_DATA, f"run {run.uid} has no stream {stream!r}") from None
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
    if fixed_transmission is None and transmitted_key is None:
        raise AnalysisError(
            FailureCode.MISSING_DATA, f"stream {stream!r} of run {run.uid} records no transmitted counts"
        )
    monitors = (
        [incident_key]
        if fixed_transmission is not None or transmitted_key is None
        else [incident_key, transmitted_key]
    )
    fields = _read_fields(run.uid, stream, node, [images[0], *monitors])
    frames = fields[images[0]]
    if frames.ndim == 2:
        frames = frames[np.newaxis]
    incident = float(np.sum(fields[incident_key]))
    if fixed_transmission is not None:
        transmission = fixed_transmission
    else:
        assert transmitted_key is not None  # refused above
        transmitted = float(np.sum(fields[transmitted_key]))
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


def run_composition(run: RunLike, solvents: tuple[str, ...]) -> dict[str, float]:
    """The realized (else the target) mass fractions of the run's sample, its solvents left out."""
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


def run_probe(run: RunLike) -> str | None:
    """The probe the run measured with: as its start document says, else its station's."""
    probe = run.start.get("probe")
    if isinstance(probe, str) and probe in {p.value for p in Probe}:
        return probe
    return {SAXS: Probe.XRAY.value, SANS: Probe.NEUTRON.value}.get(run.station or "")
