"""The plain values a campaign report is built from, checked for consistency as they are made.

A `CampaignHistory` holds everything the report shows (the samples measured, the
predicted map and the truth, the accuracy series, the curves, the stations'
activities) as values, so the report serves a campaign that just finished
in-process and one rebuilt from Tiled afterwards (`tandem.campaign.history`).
Nothing here computes a metric or draws a figure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tandem.errors import TandemError


class ReportError(TandemError, ValueError):
    """A history the report cannot be built from (inconsistent sizes, nothing to show)."""


@dataclass(frozen=True)
class Measurement:
    """One measured sample, as the campaign recorded it. Times are station seconds since the start."""

    sample_uid: str
    station: str
    composition: Mapping[str, float]
    label: str | None
    exposure_s: float
    start_s: float
    end_s: float
    status: str = "ok"
    decision_uid: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "sample_uid": self.sample_uid,
            "station": self.station,
            "composition": dict(self.composition),
            "label": self.label,
            "exposure_s": self.exposure_s,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "status": self.status,
            "decision_uid": self.decision_uid,
        }


@dataclass(frozen=True)
class Activity:
    """A stretch of station time spent on one thing (prepare, load, measure, rinse, ...)."""

    station: str
    kind: str
    start_s: float
    end_s: float
    sample_uid: str | None = None


@dataclass(frozen=True)
class PhaseMap:
    """Labels and their probabilities on a grid of compositions (``n x d``, columns in `names` order)."""

    names: tuple[str, ...]
    compositions: np.ndarray
    labels: tuple[str | None, ...]
    probabilities: np.ndarray

    def __post_init__(self) -> None:
        comps = np.asarray(self.compositions, dtype=np.float64)
        probs = np.asarray(self.probabilities, dtype=np.float64)
        if comps.ndim != 2 or comps.shape[1] != len(self.names):
            raise ReportError(
                f"compositions must be an n x {len(self.names)} array ({', '.join(self.names)}), "
                f"got shape {comps.shape}"
            )
        if len(self.labels) != len(comps) or probs.shape != (len(comps),):
            raise ReportError(
                f"one label and one probability per composition: {len(comps)} compositions, "
                f"{len(self.labels)} labels, probabilities of shape {probs.shape}"
            )
        object.__setattr__(self, "compositions", comps)
        object.__setattr__(self, "probabilities", probs)
        object.__setattr__(self, "labels", tuple(self.labels))


@dataclass(frozen=True)
class AccuracyPoint:
    """The map's accuracy after `n_samples` measurements and `station_hours` of station time."""

    n_samples: int
    station_hours: float
    accuracy: float


@dataclass(frozen=True)
class MeasuredCurve:
    sample_uid: str
    station: str
    q_inv_a: np.ndarray
    intensity_per_cm: np.ndarray
    label: str | None = None


@dataclass(frozen=True)
class CampaignHistory:
    """Everything the report shows, as plain values."""

    campaign_id: str
    #: the composition axes (non-solvent components), in the order of the grid's columns
    names: tuple[str, ...]
    stations: tuple[str, ...]
    measurements: tuple[Measurement, ...]
    predicted: PhaseMap | None = None
    #: true labels on the predicted map's grid, when the truth is known (the twin)
    truth: tuple[str, ...] | None = None
    accuracy: tuple[AccuracyPoint, ...] = ()
    curves: tuple[MeasuredCurve, ...] = ()
    activities: tuple[Activity, ...] = ()
    title: str = ""
    #: the truth's phase names in the order their colours are given (optional)
    phases: tuple[str, ...] = ()
    #: anything else worth keeping in report.json (agent, seeds, software versions)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    #: samples a stop cut off mid-run (their decisions were run again): not among `measurements`
    interrupted: int = 0

    def __post_init__(self) -> None:
        if self.truth is not None:
            if self.predicted is None:
                raise ReportError("a truth is given without a predicted map to compare it with")
            if len(self.truth) != len(self.predicted.labels):
                raise ReportError(
                    f"the truth has {len(self.truth)} labels for a grid of "
                    f"{len(self.predicted.labels)} points"
                )
        if self.predicted is not None and self.predicted.names != tuple(self.names):
            raise ReportError(
                f"the map's axes {self.predicted.names} differ from the campaign's {self.names}"
            )
        unknown = sorted({m.station for m in self.measurements} - set(self.stations))
        if unknown:
            raise ReportError(
                f"measurements at stations {unknown} not listed in stations {list(self.stations)}"
            )
