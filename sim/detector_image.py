"""2-D detector frames from physics: geometry, flux, transmission, backgrounds and Poisson noise.

The expected counts in a pixel are

    N = Φ t ε T_cell T_sample [d · dΣ/dΩ(q) + cell(q)] ΔΩ + dark · t

with Φ the flux on the sample, t the exposure, ε the detector efficiency, T the
transmissions, d the path length (cm), dΣ/dΩ the sample's scattering, cell(q)
the windows' scattering (1/sr) and ΔΩ the pixel's solid angle. Behind the beam
stop only a tiny leakage is counted. Counts are Poisson-distributed and clipped
at the detector's counter depth (saturation).

The sample's dΣ/dΩ is the ground truth's *structure*, smeared by the station's
resolution, plus the sample's *flat* scattering, which the instrument computes
from the composition (`Instrument.flat_per_cm`): for neutrons the incoherent
scattering of every component, solvent and solutes, from their formulas and
densities; for X-rays the solvent's compressibility scattering. The truth's own
`background` is set to 0 before its model is evaluated: the instrument owns the
solutes' incoherent, so it is counted once whichever system the truth describes
(the default system states its solutes' incoherent as `background`; that value
is exactly what the instrument computes for them).

An empty-cell frame drops the sample term and T_sample; a solvent (blank)
frame has the pure station solvent as its sample, with that solvent's own flat
scattering. Together they are what a reduction needs for absolute intensities.

Speed: I(q) is computed once on a radial grid spanning the detector and
interpolated onto the pixels' q map, which is cached per geometry.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from tandem.geometry import DetectorGeometry
from tandem.sim.instruments import DetectorConfiguration, Instrument, InstrumentError
from tandem.sim.scattering import instrument_intensity
from tandem.sim.truth import TruthPoint

FloatArray = npt.NDArray[np.float64]

#: points of the radial I(q) grid that is interpolated onto the pixels
RADIAL_POINTS = 400


class FrameKind(StrEnum):
    SAMPLE = "sample"
    EMPTY_CELL = "empty_cell"
    SOLVENT = "solvent"


@dataclass(frozen=True)
class PixelMap:
    """Per-pixel q (1/Å), solid angle (sr) and beam-stop mask of one geometry (read-only arrays)."""

    q_inv_a: FloatArray
    solid_angle_sr: FloatArray
    behind_beamstop: npt.NDArray[np.bool_]


@dataclass(frozen=True)
class SimulatedFrame:
    """One simulated exposure and what a test needs to check it against the truth."""

    kind: FrameKind
    counts: npt.NDArray[np.uint32]
    geometry: DetectorGeometry
    configuration: str
    exposure_s: float
    #: measured transmission of what was in the beam (sample and cell, or the cell alone),
    #: relative to the open beam, with the counting noise of a transmission measurement
    transmission: float
    #: the exact value behind `transmission`
    true_transmission: float
    #: incident quanta during the exposure (beam monitor), Poisson-distributed
    monitor_counts: float
    path_length_mm: float
    #: pixels whose counter hit the detector's maximum
    saturated_pixels: int
    #: the radial grid and the sample's true dΣ/dΩ on it (1/cm, resolution-smeared, incl. solvent)
    q_inv_a: FloatArray = field(repr=False)
    true_intensity_per_cm: FloatArray = field(repr=False)
    temperature_c: float | None = None

    @property
    def saturated(self) -> bool:
        return self.saturated_pixels > 0


@lru_cache(maxsize=16)
def pixel_map(geometry: DetectorGeometry) -> PixelMap:
    """q, solid angle and beam-stop mask for every pixel (cached; arrays are read-only)."""
    ny, nx = geometry.shape
    x_mm = (np.arange(nx, dtype=np.float64) + 0.5 - geometry.beam_center_x_px) * geometry.pixel_size_mm
    y_mm = (np.arange(ny, dtype=np.float64) + 0.5 - geometry.beam_center_y_px) * geometry.pixel_size_mm
    r_sq = y_mm[:, None] ** 2 + x_mm[None, :] ** 2
    r_mm = np.sqrt(r_sq)
    two_theta = np.arctan2(r_mm, geometry.distance_mm)
    q = 4.0 * math.pi * np.sin(two_theta / 2.0) / geometry.wavelength_a
    # a flat pixel seen obliquely: (a/L)² cos³(2θ)
    solid_angle = (geometry.pixel_size_mm / geometry.distance_mm) ** 2 * np.cos(two_theta) ** 3
    behind = r_mm < geometry.beamstop_radius_mm
    for array in (q, solid_angle, behind):
        array.setflags(write=False)
    return PixelMap(q_inv_a=q, solid_angle_sr=solid_angle, behind_beamstop=behind)


@lru_cache(maxsize=16)
def _interpolation(geometry: DetectorGeometry) -> tuple[npt.NDArray[np.intp], FloatArray]:
    """Each pixel's place on the radial grid: lower neighbour and linear weight (cached)."""
    q_grid = radial_grid(geometry)
    q_pixels = pixel_map(geometry).q_inv_a
    lower = np.clip(np.searchsorted(q_grid, q_pixels) - 1, 0, q_grid.size - 2)
    weight = np.clip((q_pixels - q_grid[lower]) / (q_grid[lower + 1] - q_grid[lower]), 0.0, 1.0)
    lower.setflags(write=False)
    weight.setflags(write=False)
    return lower, weight


def radial_grid(geometry: DetectorGeometry) -> FloatArray:
    """Log-spaced q covering every pixel of the detector (the beam-stop shadow included)."""
    q_pixels = pixel_map(geometry).q_inv_a
    q_lo = max(float(q_pixels.min()), 1e-4)
    return np.geomspace(q_lo, float(q_pixels.max()) * 1.0001, RADIAL_POINTS)


def simulate_frame(  # noqa: PLR0917 - the station devices' calling contract
    instrument: Instrument,
    configuration: str | None,
    composition: Mapping[str, float],
    truth: TruthPoint,
    exposure_s: float,
    rng: np.random.Generator,
    *,
    temperature_c: float | None = None,
) -> SimulatedFrame:
    """A sample frame: `truth` (as `instrument`'s probe sees it) at `composition` in the station's cell."""
    _check_truth_probe(instrument, truth)
    config, exposure = _checked(instrument, configuration, exposure_s, temperature_c)
    t_sample = instrument.sample_transmission(composition)  # also checks the composition
    q = radial_grid(config.geometry)
    sample = instrument_intensity(structure_only(truth), q, instrument, config) + instrument.flat_per_cm(
        composition
    )
    return _render(
        FrameKind.SAMPLE,
        instrument,
        config=config,
        exposure_s=exposure,
        rng=rng,
        q=q,
        sample_per_cm=sample,
        t_sample=t_sample,
        temperature_c=temperature_c,
    )


def simulate_empty_cell_frame(
    instrument: Instrument,
    configuration: str | None,
    exposure_s: float,
    rng: np.random.Generator,
    *,
    temperature_c: float | None = None,
) -> SimulatedFrame:
    """The empty cell: windows only."""
    config, exposure = _checked(instrument, configuration, exposure_s, temperature_c)
    q = radial_grid(config.geometry)
    return _render(
        FrameKind.EMPTY_CELL,
        instrument,
        config=config,
        exposure_s=exposure,
        rng=rng,
        q=q,
        sample_per_cm=None,
        t_sample=1.0,
        temperature_c=temperature_c,
    )


def simulate_solvent_frame(
    instrument: Instrument,
    configuration: str | None,
    exposure_s: float,
    rng: np.random.Generator,
    *,
    temperature_c: float | None = None,
) -> SimulatedFrame:
    """The blank: the station's pure solvent (H2O or D2O) in the cell."""
    config, exposure = _checked(instrument, configuration, exposure_s, temperature_c)
    q = radial_grid(config.geometry)
    sample = np.full_like(q, instrument.flat_per_cm({}))
    t_solvent = instrument.sample_transmission({})
    return _render(
        FrameKind.SOLVENT,
        instrument,
        config=config,
        exposure_s=exposure,
        rng=rng,
        q=q,
        sample_per_cm=sample,
        t_sample=t_solvent,
        temperature_c=temperature_c,
    )


def _checked(
    instrument: Instrument, configuration: str | None, exposure_s: float, temperature_c: float | None
) -> tuple[DetectorConfiguration, float]:
    config = instrument.configuration(configuration)
    exposure = instrument.check_exposure(exposure_s)
    if temperature_c is not None:
        instrument.check_temperature(temperature_c)
    return config, exposure


def _check_truth_probe(instrument: Instrument, truth: TruthPoint) -> None:
    if not isinstance(truth, TruthPoint):
        raise InstrumentError(f"truth must be a TruthPoint, got {type(truth).__name__}")


def structure_only(truth: TruthPoint) -> TruthPoint:
    """`truth` with its flat `background` at 0: the instrument adds the sample's flat scattering itself.

    Set explicitly rather than dropped, since sasmodels would otherwise add its own default (0.001).
    """
    if truth.parameters.get("background") == 0.0:
        return truth
    return replace(truth, parameters={**truth.parameters, "background": 0.0})


def _render(
    kind: FrameKind,
    instrument: Instrument,
    *,
    config: DetectorConfiguration,
    exposure_s: float,
    rng: np.random.Generator,
    q: FloatArray,
    sample_per_cm: FloatArray | None,
    t_sample: float,
    temperature_c: float | None,
) -> SimulatedFrame:
    geometry = config.geometry
    pixels = pixel_map(geometry)
    cell = instrument.cell
    path_cm = cell.path_length_mm / 10.0
    per_sr = cell.scattering_per_sr(q)
    if sample_per_cm is not None:
        per_sr = per_sr + path_cm * sample_per_cm
    transmission = cell.transmission * t_sample
    incident = config.flux_per_s * exposure_s
    scale = incident * instrument.detector.efficiency * transmission
    lower, weight = _interpolation(geometry)
    expected = per_sr[lower] * (1.0 - weight)
    expected += per_sr[lower + 1] * weight
    expected *= pixels.solid_angle_sr
    expected *= scale
    expected[pixels.behind_beamstop] *= instrument.detector.beamstop_leakage
    expected += instrument.detector.dark_counts_per_s * exposure_s
    drawn = rng.poisson(expected)
    max_counts = instrument.detector.max_counts
    saturated = int(np.count_nonzero(drawn >= max_counts))
    counts = np.minimum(drawn, max_counts).astype(np.uint32)
    # the transmission is measured on an attenuated direct beam for `transmission_s`
    beam_counts = (
        config.flux_per_s * instrument.transmission_beam_fraction * instrument.time_costs.transmission_s
    )
    measured_t = float(rng.poisson(beam_counts * transmission)) / beam_counts
    return SimulatedFrame(
        kind=kind,
        counts=counts,
        geometry=geometry,
        configuration=config.name,
        exposure_s=exposure_s,
        transmission=measured_t,
        true_transmission=transmission,
        monitor_counts=float(rng.poisson(incident)),
        path_length_mm=cell.path_length_mm,
        saturated_pixels=saturated,
        q_inv_a=q,
        true_intensity_per_cm=(sample_per_cm if sample_per_cm is not None else np.zeros_like(q)),
        temperature_c=temperature_c,
    )
