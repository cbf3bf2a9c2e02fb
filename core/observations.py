"""Observations: one analysed measurement, as the agents see it.

Analysis writes these to Tiled; agents read them back. An observation whose
`status` is not OK is a failed measurement: agents record it and never feed it
to a model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from tandem.stations import Probe

#: The label of a run whose curve shows no structure above its background. It says what the probe
#: saw there (nothing: too dilute, or no contrast for this probe), not which phase the composition
#: is in; agents learn it like a label, so that they stop spending samples where a probe sees
#: nothing, and a map shows where that is (`Prediction.unseen`).
NO_CONTRAST = "no-contrast"


class AnalysisStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"


@dataclass(frozen=True)
class Observation:
    """What one analysed run says about one composition.

    `composition` is the *realized* composition as mass fractions of every
    component but the solvent (the solvent is the rest), which is the space
    agents model. `features` holds scalars (for example `guinier_rg_a`,
    `peak_d_spacing_a`) with NaN where not valid; `label` is the phase label
    from the campaign's clustering.
    """

    sample_uid: str
    run_uid: str
    campaign_id: str
    station: str
    probe: Probe
    composition: Mapping[str, float]
    status: AnalysisStatus
    exposure_s: float
    label: str | None = None
    label_probabilities: Mapping[str, float] = field(default_factory=dict)
    features: Mapping[str, float] = field(default_factory=dict)
    decision_uid: str | None = None
    #: station clock at the end of the measurement, seconds since the campaign began
    finished_at_s: float | None = None
    failure_reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is AnalysisStatus.OK

    def label_vector(self) -> dict[str, float]:
        """The label as probabilities over phase names: the given ones normalised, else all on `label`."""
        if self.label_probabilities:
            total = sum(self.label_probabilities.values())
            return {k: v / total for k, v in self.label_probabilities.items()}
        return {str(self.label): 1.0}

    def to_dict(self) -> dict[str, Any]:
        return {
            "sample_uid": self.sample_uid,
            "run_uid": self.run_uid,
            "campaign_id": self.campaign_id,
            "station": self.station,
            "probe": self.probe.value,
            "composition": dict(self.composition),
            "status": self.status.value,
            "exposure_s": self.exposure_s,
            "label": self.label,
            "label_probabilities": dict(self.label_probabilities),
            "features": dict(self.features),
            "decision_uid": self.decision_uid,
            "finished_at_s": self.finished_at_s,
            "failure_reason": self.failure_reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Observation:
        return cls(
            sample_uid=str(data["sample_uid"]),
            run_uid=str(data["run_uid"]),
            campaign_id=str(data["campaign_id"]),
            station=str(data["station"]),
            probe=Probe(data["probe"]),
            composition={str(k): float(v) for k, v in data["composition"].items()},
            status=AnalysisStatus(data["status"]),
            exposure_s=float(data["exposure_s"]),
            label=data.get("label"),
            label_probabilities={
                str(k): float(v) for k, v in (data.get("label_probabilities") or {}).items()
            },
            features={str(k): float(v) for k, v in (data.get("features") or {}).items()},
            decision_uid=data.get("decision_uid"),
            finished_at_s=data.get("finished_at_s"),
            failure_reason=data.get("failure_reason"),
        )
