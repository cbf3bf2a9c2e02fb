"""What a station can do, and the check that refuses scans it cannot do before anything moves.

The limits come from the devices themselves (control limits of the exposure-time
and temperature setpoints, the configurations the detector stage knows), so the
same check guards the EPICS and the simulated backends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tandem.errors import TandemError
from tandem.suggestions import ScanParameters


class ScanLimitError(TandemError, ValueError):
    """Scan parameters outside what a station can do. Raised before a run starts."""


class ExposureOutOfRangeError(ScanLimitError):
    """An exposure time the detector cannot take."""


class TemperatureOutOfRangeError(ScanLimitError):
    """A temperature the sample environment cannot reach."""


class UnknownConfigurationError(ScanLimitError):
    """A detector configuration the station does not have."""


class TooManyFramesError(ScanLimitError):
    """More frames than the station takes per sample."""


@dataclass(frozen=True)
class StationLimits:
    """The ranges a station accepts. Bounds are inclusive."""

    station: str
    exposure_s: tuple[float, float]
    temperature_c: tuple[float, float]
    configurations: tuple[str, ...]
    max_frames: int = 100

    def __post_init__(self) -> None:
        for label, (low, high) in (("exposure_s", self.exposure_s), ("temperature_c", self.temperature_c)):
            if not (math.isfinite(low) and math.isfinite(high) and low <= high):
                raise ScanLimitError(
                    f"station {self.station!r}: {label} range must be finite with low <= high, "
                    f"got ({low!r}, {high!r})"
                )
        if not self.configurations:
            raise ScanLimitError(f"station {self.station!r} has no detector configuration")
        if self.max_frames < 1:
            raise ScanLimitError(f"station {self.station!r}: max_frames must be >= 1, got {self.max_frames}")

    def check(self, scan: ScanParameters) -> None:
        """Raise a `ScanLimitError` naming the first parameter out of range; return if all fit."""
        low, high = self.exposure_s
        if not low <= scan.exposure_s <= high:
            raise ExposureOutOfRangeError(
                f"station {self.station!r}: exposure {scan.exposure_s:g} s is outside the detector's "
                f"range [{low:g}, {high:g}] s"
            )
        if scan.configuration not in self.configurations:
            raise UnknownConfigurationError(
                f"station {self.station!r} has no detector configuration {scan.configuration!r}; "
                f"known configurations: {', '.join(self.configurations)}"
            )
        if scan.temperature_c is not None:
            low, high = self.temperature_c
            if not low <= scan.temperature_c <= high:
                raise TemperatureOutOfRangeError(
                    f"station {self.station!r}: temperature {scan.temperature_c:g} °C is outside the "
                    f"sample environment's range [{low:g}, {high:g}] °C"
                )
        if scan.n_frames > self.max_frames:
            raise TooManyFramesError(
                f"station {self.station!r}: {scan.n_frames} frames requested, at most "
                f"{self.max_frames} per sample"
            )
