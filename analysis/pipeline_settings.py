"""What the analysis pipeline is told: each station's calibration and the settings of every step.

A station's calibration is what turns its counts into 1/cm and is not in each run (the detector
efficiency, the open beam's monitor ratio, the cell's path length, the counter depth); the settings
gather those of reduction, features, fits and labels, and are stamped on every analysed node.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tandem.analysis.features import FeatureSettings
from tandem.analysis.fit_search import FitSettings
from tandem.analysis.labels import LabelSettings
from tandem.analysis.reduction import ReductionSettings
from tandem.errors import TandemError


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
