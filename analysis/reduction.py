"""Reduction: detector frames to I(q) in 1/cm, with the checks that keep bad frames out of the data.

The scale is the differential scattering cross-section per unit volume:

    dΣ/dΩ(q) = Σ_bin counts / (N₀ · T · d · Σ_bin ΔΩ)

with N₀ the incident photons or neutrons over the exposure (the monitor), T
the measured transmission, d the sample thickness in cm and ΔΩ each pixel's
solid angle in sr. That is what makes SAXS and SANS curves of one sample
comparable: both are in 1/cm, each with its own contrast. The empty-cell
measurement, normalised the same way with its own transmission, is subtracted
before dividing by the thickness; the solvent (a separately reduced curve) is
subtracted with its volume fraction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from tandem.analysis.curves import Curve
from tandem.analysis.failures import AnalysisError, FailureCode
from tandem.analysis.integration import AzimuthalIntegration, QBinning, integrator_for
from tandem.geometry import DetectorGeometry, InvalidGeometryError


@dataclass(frozen=True, eq=False)
class Exposure:
    """Frames of one measurement and what normalises them.

    `counts` is one frame (rows, columns) or a stack (n, rows, columns) summed
    before integration; `incident_counts` is N₀, the incident photons or
    neutrons on the sample over the whole exposure (monitor counts, summed over
    the stack); `transmission` is the measured I/I₀ of what sat in the beam.
    `saturation_counts` is the detector's per-pixel ceiling, if it has one.
    """

    counts: npt.ArrayLike
    exposure_s: float
    incident_counts: float
    transmission: float
    saturation_counts: float | None = None


@dataclass(frozen=True)
class ReductionSettings:
    """The knobs of reduction; they are stamped on every analysed node."""

    binning: QBinning = field(default_factory=QBinning)
    #: pixels at or above saturation are left out of a frame if they are at most this fraction of the used
    #: pixels; beyond it the frame fails: too much of the curve would rest on a saturated detector.
    max_saturated_fraction: float = 1e-3

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_bins": self.binning.n_bins,
            "q_spacing": self.binning.spacing,
            "min_pixels_per_bin": self.binning.min_pixels_per_bin,
            "beamstop_margin_px": self.binning.beamstop_margin_px,
            "max_saturated_fraction": self.max_saturated_fraction,
        }


def geometry_from_metadata(data: Mapping[str, Any] | None) -> DetectorGeometry:
    """The recorded geometry, or a MISSING_GEOMETRY failure that says what was missing."""
    if not data:
        raise AnalysisError(FailureCode.MISSING_GEOMETRY, "the run records no detector geometry")
    try:
        return DetectorGeometry.from_dict(data)
    except (InvalidGeometryError, TypeError) as exc:
        raise AnalysisError(
            FailureCode.MISSING_GEOMETRY, f"the recorded geometry is unusable: {exc}"
        ) from None


def _check_scalars(exposure: Exposure, what: str) -> None:
    t = exposure.transmission
    if not (isinstance(t, int | float) and math.isfinite(t) and 0 < t <= 1):
        raise AnalysisError(
            FailureCode.BAD_TRANSMISSION, f"{what}: transmission must lie in (0, 1], measured {t!r}"
        )
    for name in ("incident_counts", "exposure_s"):
        value = getattr(exposure, name)
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            raise AnalysisError(
                FailureCode.BAD_NORMALISATION, f"{what}: {name} must be positive, got {value!r}"
            )


def _frame_sum(counts: npt.ArrayLike, shape: tuple[int, int], what: str) -> npt.NDArray[Any]:
    """One frame: a stack is summed; the shape must be the geometry's."""
    data = np.asarray(counts)
    if data.size == 0:
        raise AnalysisError(FailureCode.MISSING_DATA, f"{what}: the frame is empty (no pixels)")
    if data.ndim == 3:
        data = data.sum(axis=0, dtype=np.float64 if data.dtype.kind == "f" else np.int64)
    if data.shape != shape:
        raise AnalysisError(
            FailureCode.BAD_FRAME,
            f"{what}: frame shape {data.shape} does not match the recorded geometry {shape} (rows, columns)",
        )
    if data.dtype.kind not in "iuf":
        raise AnalysisError(FailureCode.BAD_FRAME, f"{what}: frame holds {data.dtype}, not counts")
    return data


@dataclass(frozen=True, eq=False)
class BinnedCounts:
    """Per-bin sums of one normalised exposure: counts, and solid angle of the pixels that counted."""

    counts: npt.NDArray[np.float64]
    solid_angle_sr: npt.NDArray[np.float64]
    norm: float  # N₀ · T


def bin_exposure(
    exposure: Exposure,
    integrator: AzimuthalIntegration,
    settings: ReductionSettings,
    what: str = "sample",
) -> BinnedCounts:
    """Check one exposure and sum its counts per q bin (saturated pixels left out if they are few)."""
    _check_scalars(exposure, what)
    frame = _frame_sum(exposure.counts, integrator.geometry.shape, what)
    used = integrator.pixel_used
    sums = integrator.sum_counts(frame)
    # Whole-frame reductions are cheap; masked-pixel copies of a 1-Mpixel frame are not.
    if not np.isfinite(sums).all():
        raise AnalysisError(FailureCode.BAD_FRAME, f"{what}: the frame holds NaN or infinite values")
    if frame.dtype.kind != "u" and np.min(frame, where=used, initial=0) < 0:
        raise AnalysisError(FailureCode.BAD_FRAME, f"{what}: the frame holds negative counts")
    if not sums.sum() > 0:
        raise AnalysisError(
            FailureCode.EMPTY_FRAME, f"{what}: no counts outside the beam stop (shutter closed? beam off?)"
        )
    solid_angle = integrator.solid_angle_sr
    if exposure.saturation_counts is not None:
        n_stack = np.asarray(exposure.counts).shape[0] if np.ndim(exposure.counts) == 3 else 1
        ceiling = exposure.saturation_counts * n_stack
        hot = used & (frame >= ceiling) if frame.max() >= ceiling else None
        n_hot = 0 if hot is None else int(hot.sum())
        if hot is not None and n_hot:
            fraction = n_hot / int(used.sum())
            if fraction > settings.max_saturated_fraction:
                raise AnalysisError(
                    FailureCode.SATURATED_FRAME,
                    f"{what}: {n_hot} pixels ({fraction:.2%}) at the saturation level "
                    f"{exposure.saturation_counts:g}; at most {settings.max_saturated_fraction:.2%} may be "
                    "left out — shorten the exposure or attenuate",
                )
            hot_idx = np.flatnonzero(hot.ravel())
            rows = integrator.matrix[:, hot_idx]
            sums = sums - rows @ frame.ravel()[hot_idx].astype(np.float64)
            solid_angle = solid_angle - rows @ integrator.pixel_solid_angle_sr.ravel()[hot_idx]
    return BinnedCounts(
        np.asarray(sums, dtype=np.float64),
        np.asarray(solid_angle, dtype=np.float64),
        float(exposure.incident_counts) * float(exposure.transmission),
    )


def reduce_exposure(
    sample: Exposure,
    geometry: DetectorGeometry,
    *,
    thickness_mm: float,
    empty_cell: Exposure | None = None,
    settings: ReductionSettings | None = None,
) -> Curve:
    """I(q) in 1/cm of `sample` (less the empty cell if given), with Poisson errors and q resolution."""
    settings = settings or ReductionSettings()
    if not (math.isfinite(thickness_mm) and thickness_mm > 0):
        raise AnalysisError(
            FailureCode.BAD_NORMALISATION,
            f"sample thickness must be a positive length, got {thickness_mm!r} mm",
        )
    integrator = integrator_for(geometry, settings.binning)
    binned = bin_exposure(sample, integrator, settings, "sample")
    keep = binned.solid_angle_sr > 0
    intensity, variance = _per_volume(binned, keep)
    if empty_cell is not None:
        cell = bin_exposure(empty_cell, integrator, settings, "empty cell")
        keep &= cell.solid_angle_sr > 0
        cell_intensity, cell_variance = _per_volume(cell, keep)
        intensity = intensity - cell_intensity
        variance = variance + cell_variance
    thickness_cm = thickness_mm / 10.0
    return Curve(
        integrator.q_inv_a[keep],
        intensity[keep] / thickness_cm,
        np.sqrt(variance[keep]) / thickness_cm,
        integrator.dq_inv_a[keep],
        {"thickness_mm": thickness_mm, "empty_cell_subtracted": empty_cell is not None},
    )


def _per_volume(
    binned: BinnedCounts, keep: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Counts per incident particle per sr (times path length), and its Poisson variance.

    A bin with no counts still gets the variance of one count, so that it weighs in fits as the
    measurement it is (an upper limit), not as an infinitely precise zero.
    """
    denominator = np.where(keep, binned.norm * binned.solid_angle_sr, np.inf)
    return binned.counts / denominator, np.maximum(binned.counts, 1.0) / denominator**2


def subtract_solvent(sample: Curve, solvent: Curve, solvent_volume_fraction: float) -> Curve:
    """The solute's scattering: the sample less the solvent scaled by the volume it occupies in the sample."""
    if not (math.isfinite(solvent_volume_fraction) and 0 <= solvent_volume_fraction <= 1):
        raise AnalysisError(
            FailureCode.BAD_NORMALISATION,
            f"solvent volume fraction must lie in [0, 1], got {solvent_volume_fraction!r}",
        )
    return sample.minus(solvent, solvent_volume_fraction)
