"""The parts a station's instrument model is built from, each a frozen value.

A named detector configuration (detector geometry, pinhole collimation, the flux
on the sample, and the q resolution they give), the sample cell and what its
windows add, the area detector's counting behaviour, and the station time each
action costs. `tandem.sim.instruments` assembles them into an `Instrument`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tandem.geometry import DetectorGeometry

FloatArray = npt.NDArray[np.float64]

#: FWHM of a Gaussian over its standard deviation
_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


@dataclass(frozen=True)
class Collimation:
    """Pinhole collimation: it sets the angular part of the q resolution."""

    length_mm: float
    source_aperture_radius_mm: float
    sample_aperture_radius_mm: float


@dataclass(frozen=True)
class DetectorConfiguration:
    """One named setting of the station: detector geometry, collimation and the flux it gives."""

    name: str
    geometry: DetectorGeometry
    collimation: Collimation
    #: photons or neutrons per second on the sample
    flux_per_s: float

    def q_resolution(self, q_inv_a: npt.ArrayLike) -> FloatArray:
        """1-σ pinhole resolution dq (1/Å) at each q: wavelength spread, collimation and pixel size."""
        geometry, col = self.geometry, self.collimation
        q = np.asarray(q_inv_a, dtype=np.float64)
        k = 2.0 * math.pi / geometry.wavelength_a
        sigma_lambda = geometry.wavelength_spread / _FWHM_PER_SIGMA
        l1, l2 = col.length_mm, geometry.distance_mm
        # Mildner & Carpenter: divergence from the two apertures, plus the pixel's width
        sigma_2theta_sq = (
            (col.source_aperture_radius_mm / l1) ** 2 / 4.0
            + (col.sample_aperture_radius_mm * (1.0 / l1 + 1.0 / l2)) ** 2 / 4.0
            + (geometry.pixel_size_mm / l2) ** 2 / 12.0
        )
        theta = np.arcsin(np.clip(q / (2.0 * k), 0.0, 1.0))
        dq_angle = k * np.cos(theta) * math.sqrt(sigma_2theta_sq)
        return np.asarray(np.sqrt((q * sigma_lambda) ** 2 + dq_angle**2), dtype=np.float64)


@dataclass(frozen=True)
class SampleCell:
    """The cell the sample sits in, and what it adds to every measurement."""

    path_length_mm: float
    #: transmission of the empty cell (both windows)
    transmission: float
    #: flat scattering of both windows, dΣ/dΩ × thickness, in 1/sr
    flat_per_sr: float
    #: Porod-like parasitic scattering of the windows: this × q⁻⁴ (q in 1/Å), in 1/sr
    porod_per_sr: float

    def scattering_per_sr(self, q_inv_a: FloatArray) -> FloatArray:
        # the parasitic term stands for window roughness and slit scatter: it levels off inside the beam
        q = np.maximum(q_inv_a, 2e-3)
        return self.flat_per_sr + self.porod_per_sr / q**4


@dataclass(frozen=True)
class DetectorModel:
    """Counting behaviour of the area detector."""

    #: the counter's largest value: counts above it are clipped (saturation)
    max_counts: int
    #: background counts per pixel per second with the beam off
    dark_counts_per_s: float
    #: fraction of scattered quanta that are counted
    efficiency: float
    #: fraction of the scattered intensity behind the beam stop that is still counted (0: a tight stop)
    beamstop_leakage: float = 0.0


@dataclass(frozen=True)
class TimeCosts:
    """Station time each action takes, in seconds (temperature: a rate and a settling time)."""

    sample_load_s: float
    configuration_change_s: float
    transmission_s: float
    readout_s: float
    shutter_s: float
    temperature_rate_c_per_min: float
    temperature_settle_s: float

    def temperature_change_s(self, from_c: float, to_c: float) -> float:
        if from_c == to_c:
            return 0.0
        return abs(to_c - from_c) / self.temperature_rate_c_per_min * 60.0 + self.temperature_settle_s
