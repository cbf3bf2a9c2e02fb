"""Detector geometry: what a station records with every frame so that it can be reduced.

The geometry is part of the data contract between the stations (which record it
in each run) and analysis (which integrates frames with it). Lengths in mm,
wavelength in Å, beam centre in pixels (fractional, from the first pixel's corner).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from tandem.errors import TandemError

#: hc in keV·Å, to convert an X-ray energy to a wavelength.
HC_KEV_A = 12.398419843320026


class InvalidGeometryError(TandemError, ValueError):
    """Geometry that no detector could have (or that a run did not record)."""


@dataclass(frozen=True)
class DetectorGeometry:
    n_pixels_x: int
    n_pixels_y: int
    pixel_size_mm: float
    distance_mm: float
    beam_center_x_px: float
    beam_center_y_px: float
    wavelength_a: float
    beamstop_radius_mm: float
    #: relative wavelength spread (FWHM); ~1e-4 for a monochromatic X-ray beam, ~0.1 for SANS
    wavelength_spread: float = 1e-4

    def __post_init__(self) -> None:
        positive = {
            "n_pixels_x": self.n_pixels_x,
            "n_pixels_y": self.n_pixels_y,
            "pixel_size_mm": self.pixel_size_mm,
            "distance_mm": self.distance_mm,
            "wavelength_a": self.wavelength_a,
        }
        for name, value in positive.items():
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise InvalidGeometryError(f"detector geometry: {name} must be positive, got {value!r}")
        if not (math.isfinite(self.beamstop_radius_mm) and self.beamstop_radius_mm >= 0):
            raise InvalidGeometryError(f"beam stop radius must be >= 0 mm, got {self.beamstop_radius_mm!r}")
        if not (0 <= self.wavelength_spread < 1):
            raise InvalidGeometryError(
                f"wavelength spread must lie in [0, 1), got {self.wavelength_spread!r}"
            )

    @property
    def shape(self) -> tuple[int, int]:
        """Frame shape as numpy sees it: (rows, columns) = (y, x)."""
        return (self.n_pixels_y, self.n_pixels_x)

    def q_at_radius(self, radius_mm: float) -> float:
        """Momentum transfer (1/Å) at `radius_mm` from the beam on the detector."""
        two_theta = math.atan2(radius_mm, self.distance_mm)
        return 4 * math.pi * math.sin(two_theta / 2) / self.wavelength_a

    @property
    def q_min_inv_a(self) -> float:
        return self.q_at_radius(self.beamstop_radius_mm)

    @property
    def q_max_inv_a(self) -> float:
        """q at the farthest corner of the detector."""
        dx = max(self.beam_center_x_px, self.n_pixels_x - self.beam_center_x_px) * self.pixel_size_mm
        dy = max(self.beam_center_y_px, self.n_pixels_y - self.beam_center_y_px) * self.pixel_size_mm
        return self.q_at_radius(math.hypot(dx, dy))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DetectorGeometry:
        missing = [f for f in cls.__dataclass_fields__ if f not in data and f != "wavelength_spread"]
        if missing:
            raise InvalidGeometryError(f"geometry is missing {', '.join(missing)}")
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
