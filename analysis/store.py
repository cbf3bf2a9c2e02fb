"""Analysed results in Tiled: one node per raw run, keyed by the raw run's uid.

Layout (a sibling of `raw`; `tandem.catalog_layout` holds the whole catalog's)::

    analysed/
      <raw run uid>/        metadata: links (run, sample, campaign, decision), status and reason,
                            features, fits, label, analysis version and parameters
        curve               the reduced curve, one 4 × n float64 array whose rows are `CURVE_ROWS`
                            (q_inv_a, intensity_per_cm, sigma_per_cm, dq_inv_a); absent for a
                            failed analysis. Nodes of schema 2 hold the four rows as four arrays.

Keying by the raw run uid is what makes analysis idempotent: analysing a run
again replaces its node, never adds a second. A node is written in steps —
created with ``complete: false``, its curve added, then marked complete — so a
process killed half-way leaves a node that readers ignore and the next writer
replaces: every run ends up analysed exactly once.

Model fits take longer than the rest, so a node can be readable before they are
done: curve, features and label written with ``fits_status: "pending"`` (and
``complete: false``), then the fits added and the node marked complete in one
metadata update. Readers see only complete nodes unless they ask for pending
ones (`get(..., pending_fits=True)`, `records(..., pending_fits=True)`), and
``fits_status`` tells "fits pending" from "no fits" (`FitStatus`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import numpy as np
from tiled.queries import Key

from tandem.analysis.curves import Curve
from tandem.catalog_layout import TiledContainer, analysed_node, create_afresh, read_array
from tandem.observations import AnalysisStatus, Observation
from tandem.stations import Probe

__all__ = [
    "CURVE_ROWS",
    "SCHEMA_VERSION",
    "AnalysisRecord",
    "AnalysisStore",
    "FitStatus",
    "with_label",
]

#: the rows of an analysed node's `curve` array, in order (the fields of `Curve`)
CURVE_ROWS = ("q_inv_a", "intensity_per_cm", "sigma_per_cm", "dq_inv_a")
#: 3: the curve is one array (one write and one read, where schema 2's four arrays took four of each)
SCHEMA_VERSION = 3
_CURVE = "curve"


class FitStatus(StrEnum):
    """Where a node's model fits are: a node without fits says why."""

    #: curve, features and label are written; the fits are being computed
    PENDING = "pending"
    DONE = "done"
    #: no candidate model converged (the analysis status is then `failed`, `fit_not_converged`)
    FAILED = "failed"
    #: not asked for (fits off), or the analysis failed before them
    NOT_RUN = "not_run"


@dataclass(frozen=True, eq=False)
class AnalysisRecord:
    """Everything analysis says about one raw run. `curve` is None when the analysis failed."""

    run_uid: str
    status: AnalysisStatus
    analysis_version: str
    parameters: Mapping[str, Any]
    sample_uid: str | None = None
    campaign_id: str | None = None
    decision_uid: str | None = None
    station: str | None = None
    probe: str | None = None
    #: realized mass fractions of the non-solvent components
    composition: Mapping[str, float] = field(default_factory=dict)
    exposure_s: float = math.nan
    features: Mapping[str, Any] = field(default_factory=dict)
    fits: Mapping[str, Any] = field(default_factory=dict)
    label: str | None = None
    label_probabilities: Mapping[str, float] = field(default_factory=dict)
    fits_status: FitStatus = FitStatus.NOT_RUN
    failure_code: str | None = None
    failure_reason: str | None = None
    finished_at_s: float | None = None
    analysed_at: float = field(default_factory=time.time)
    #: when the store marked the node complete (epoch s, the writing worker's clock); None until then
    completed_at: float | None = None
    curve: Curve | None = None

    @property
    def ok(self) -> bool:
        return self.status is AnalysisStatus.OK

    @property
    def fits_pending(self) -> bool:
        return self.fits_status is FitStatus.PENDING

    def metadata(self) -> dict[str, Any]:
        return _json_safe(
            {
                "schema_version": SCHEMA_VERSION,
                "run_uid": self.run_uid,
                "status": self.status.value,
                "analysis_version": self.analysis_version,
                "parameters": dict(self.parameters),
                "sample_uid": self.sample_uid,
                "campaign_id": self.campaign_id,
                "decision_uid": self.decision_uid,
                "station": self.station,
                "probe": self.probe,
                "composition": dict(self.composition),
                "exposure_s": self.exposure_s,
                "features": dict(self.features),
                "fits": dict(self.fits),
                "label": self.label,
                "label_probabilities": dict(self.label_probabilities),
                "fits_status": self.fits_status.value,
                "failure_code": self.failure_code,
                "failure_reason": self.failure_reason,
                "finished_at_s": self.finished_at_s,
                "analysed_at": self.analysed_at,
            }
        )

    @classmethod
    def from_node(cls, metadata: Mapping[str, Any], curve: Curve | None) -> AnalysisRecord:
        m = _from_json(metadata)
        return cls(
            run_uid=str(m["run_uid"]),
            status=AnalysisStatus(m["status"]),
            analysis_version=str(m.get("analysis_version", "")),
            parameters=dict(m.get("parameters") or {}),
            sample_uid=m.get("sample_uid"),
            campaign_id=m.get("campaign_id"),
            decision_uid=m.get("decision_uid"),
            station=m.get("station"),
            probe=m.get("probe"),
            composition={str(k): float(v) for k, v in (m.get("composition") or {}).items()},
            exposure_s=_float(m.get("exposure_s")),
            features=dict(m.get("features") or {}),
            fits=dict(m.get("fits") or {}),
            label=m.get("label"),
            label_probabilities={str(k): float(v) for k, v in (m.get("label_probabilities") or {}).items()},
            # nodes of schema 1 predate fits_status: they hold fits or none
            fits_status=FitStatus(
                m.get("fits_status") or (FitStatus.DONE if m.get("fits") else FitStatus.NOT_RUN)
            ),
            failure_code=m.get("failure_code"),
            failure_reason=m.get("failure_reason"),
            finished_at_s=m.get("finished_at_s"),
            analysed_at=_float(m.get("analysed_at")),
            completed_at=m.get("completed_at"),
            curve=curve,
        )

    def scalar_features(self) -> dict[str, float]:
        """`name` and `name_sigma` for every feature (NaN where not valid), plus the best model's parameters
        as `fit_<name>` and its reduced χ²."""
        out: dict[str, float] = {}
        for name, est in self.features.items():
            if not isinstance(est, Mapping):
                continue
            valid = bool(est.get("valid"))
            out[name] = _float(est.get("value")) if valid else math.nan
            out[f"{name}_sigma"] = _float(est.get("sigma")) if valid else math.nan
        best = _best_fit(self.fits)
        if best is not None:
            for name, (value, sigma) in (best.get("parameters") or {}).items():
                out[f"fit_{name}"] = _float(value)
                out[f"fit_{name}_sigma"] = _float(sigma)
            out["fit_chi2_reduced"] = _float(best.get("chi2_reduced"))
        return out

    def to_observation(self) -> Observation:
        """What agents read: a failed analysis becomes a failed observation, never data."""
        return Observation(
            sample_uid=self.sample_uid or "",
            run_uid=self.run_uid,
            campaign_id=self.campaign_id or "",
            station=self.station or "",
            probe=Probe(self.probe) if self.probe else Probe.XRAY,
            composition=dict(self.composition),
            status=self.status,
            exposure_s=self.exposure_s,
            label=self.label if self.ok else None,
            label_probabilities=dict(self.label_probabilities) if self.ok else {},
            features=self.scalar_features() if self.ok else {},
            decision_uid=self.decision_uid,
            finished_at_s=self.finished_at_s,
            failure_reason=None if self.ok else f"{self.failure_code}: {self.failure_reason}",
        )


def _best_fit(fits: Mapping[str, Any]) -> Mapping[str, Any] | None:
    best = fits.get("best_model")
    for fit in fits.get("fits") or []:
        if isinstance(fit, Mapping) and fit.get("model") == best:
            return fit
    return None


def _float(value: Any) -> float:
    try:
        return math.nan if value is None else float(value)
    except (TypeError, ValueError):
        return math.nan


def _json_safe(value: Any) -> Any:
    """NaN and ±inf have no JSON form: store them as None (read back as NaN where a number is expected)."""
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _from_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_from_json(v) for v in value]
    return value


class AnalysisStore:
    """Read and write analysed nodes."""

    def __init__(self, client: TiledContainer) -> None:
        self._client = client
        self._node = analysed_node(client)

    def put(self, record: AnalysisRecord) -> None:
        """Write `record` as the one node of its run (replacing any earlier or half-written node).

        A record whose fits are pending is written readable but not complete: `finish` completes it.
        """
        # the fits status is set last: a node without its curve is never "pending", only incomplete
        metadata = record.metadata() | {"complete": False, "fits_status": None}
        # most runs are analysed once: created first, replaced whole only when the server says the
        # node exists (asking first cost a request per run)
        container = create_afresh(self._node, record.run_uid, metadata)
        if record.curve is not None:
            rows = [np.asarray(getattr(record.curve, name), dtype=np.float64) for name in CURVE_ROWS]
            container.write_array(np.vstack(rows), key=_CURVE, metadata={"rows": list(CURVE_ROWS)})
        done = {} if record.fits_pending else {"completed_at": time.time()}
        container.update_metadata(
            metadata={"complete": not record.fits_pending, "fits_status": record.fits_status.value} | done
        )

    def finish(self, record: AnalysisRecord) -> None:
        """Complete the node `put` wrote with fits pending: its metadata (fits, status, label) in one update.

        The arrays are the curve already written; a node that is gone (replaced meanwhile by a forced
        re-analysis) is written whole.
        """
        node = self._lookup(record.run_uid)
        if node is None or node.metadata.get("fits_status") != FitStatus.PENDING.value:
            self.put(record)
            return
        node.update_metadata(metadata=record.metadata() | {"complete": True, "completed_at": time.time()})

    def is_done(self, run_uid: str) -> bool:
        """Whether the run has a complete analysed node (ok or failed)."""
        node = self._lookup(run_uid)
        return node is not None and bool(node.metadata.get("complete"))

    def get(
        self, run_uid: str, *, with_curve: bool = True, pending_fits: bool = False
    ) -> AnalysisRecord | None:
        """The run's complete record; with `pending_fits`, also one whose fits are still being computed
        (`record.fits_pending`: its status may yet become failed if no model fits)."""
        node = self._lookup(run_uid)
        if node is None or not _readable(node.metadata, pending_fits):
            return None
        return self._record(node, with_curve)

    def records(
        self,
        *,
        campaign_id: str | None = None,
        station: str | None = None,
        status: AnalysisStatus | None = None,
        with_curve: bool = True,
        pending_fits: bool = False,
        analysed_since: float | None = None,
    ) -> list[AnalysisRecord]:
        """Complete records, oldest analysis first; with `pending_fits`, also those whose fits are pending;
        with `analysed_since` (epoch s, the analysing worker's clock), only those analysed from then on
        (the server filters them: a follower reads what is new, not the whole campaign again)."""
        selections = [Key("complete") == True]  # noqa: E712 - a Tiled query, not a comparison
        if pending_fits:
            selections.append(Key("fits_status") == FitStatus.PENDING.value)
        out = []
        for selection in selections:
            node = self._node.search(selection)
            if campaign_id is not None:
                node = node.search(Key("campaign_id") == campaign_id)
            if station is not None:
                node = node.search(Key("station") == station)
            if status is not None:
                node = node.search(Key("status") == status.value)
            if analysed_since is not None:
                node = node.search(Key("analysed_at") >= analysed_since)
            out += [self._record(child, with_curve) for child in _values(node)]
        # a node completed between the two searches is in both
        unique = {r.run_uid: r for r in sorted(out, key=lambda r: r.fits_pending, reverse=True)}
        return sorted(unique.values(), key=lambda r: r.analysed_at)

    def done_uids(self) -> set[str]:
        return set(self._node.search(Key("complete") == True).keys())  # noqa: E712

    def observations(self, campaign_id: str) -> list[Observation]:
        return [r.to_observation() for r in self.records(campaign_id=campaign_id, with_curve=False)]

    def _lookup(self, run_uid: str) -> TiledContainer | None:
        try:
            return self._node[run_uid]
        except KeyError:
            return None

    @staticmethod
    def _record(node: TiledContainer, with_curve: bool) -> AnalysisRecord:
        return AnalysisRecord.from_node(node.metadata, _curve(node) if with_curve else None)


def _curve(node: TiledContainer) -> Curve | None:
    """The node's curve; None for a node without one (a failed analysis)."""
    try:
        rows = read_array(node, _CURVE).astype(np.float64, copy=False)
    except KeyError:
        # schema 2: one array per row; a failed analysis has neither
        if not all(name in node for name in CURVE_ROWS):
            return None
        rows = np.stack([read_array(node, name).astype(np.float64, copy=False) for name in CURVE_ROWS])
    q, i, sigma, dq = rows
    return Curve(q, i, sigma, dq)


def _readable(metadata: Mapping[str, Any], pending_fits: bool) -> bool:
    if metadata.get("complete"):
        return True
    return pending_fits and metadata.get("fits_status") == FitStatus.PENDING.value


def _values(node: TiledContainer) -> Iterator[TiledContainer]:
    yield from node.values()


def with_label(
    record: AnalysisRecord, label: str | None, probabilities: Mapping[str, float]
) -> AnalysisRecord:
    return replace(record, label=label, label_probabilities=dict(probabilities))
