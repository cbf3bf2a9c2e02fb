"""Azimuthal integration of detector frames, one precomputed integrator per geometry.

pyFAI supplies the geometry (q and absolute solid angle of every pixel, from
the `DetectorGeometry` a run records). The integration itself is a sparse
matrix that sums pixels into q bins: built once per geometry and binning, it
turns a 1-Mpixel frame into bin sums with one sparse mat-vec, several times
faster than `integrate1d` (see bench/README.md). It does no pixel splitting,
which is exact for the quantities we need (summed counts and summed solid
angle per bin) as long as bins hold many pixels; `pyfai_reference` integrates
the same frame with pyFAI itself, for comparison.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from pyFAI.detectors import Detector
from pyFAI.integrator.azimuthal import AzimuthalIntegrator

from tandem.analysis.failures import AnalysisError, FailureCode
from tandem.geometry import DetectorGeometry

FloatArray = npt.NDArray[np.float64]

#: FWHM of a Gaussian over its standard deviation.
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


@dataclass(frozen=True)
class QBinning:
    """How pixels are grouped into q bins.

    Bins holding fewer than `min_pixels_per_bin` pixels are dropped (near the
    beam stop log-spaced bins can be thinner than a pixel). Pixels within
    `beamstop_margin_px` of the beam stop's shadow are masked too: its edge is
    never sharp.
    """

    n_bins: int = 200
    spacing: Literal["log", "linear"] = "log"
    min_pixels_per_bin: int = 4
    beamstop_margin_px: float = 1.0

    def __post_init__(self) -> None:
        if self.n_bins < 2:
            raise AnalysisError(FailureCode.BAD_NORMALISATION, f"need at least 2 q bins, got {self.n_bins}")
        if self.spacing not in ("log", "linear"):
            raise AnalysisError(
                FailureCode.BAD_NORMALISATION, f"q spacing is 'log' or 'linear', got {self.spacing!r}"
            )
        if self.min_pixels_per_bin < 1 or self.beamstop_margin_px < 0:
            raise AnalysisError(
                FailureCode.BAD_NORMALISATION, "min_pixels_per_bin must be >= 1 and beamstop_margin_px >= 0"
            )


def pyfai_integrator(geometry: DetectorGeometry) -> AzimuthalIntegrator:
    """A pyFAI integrator for `geometry`: PONI at the beam centre, detector normal to the beam."""
    pixel_m = geometry.pixel_size_mm * 1e-3
    detector = Detector(pixel1=pixel_m, pixel2=pixel_m, max_shape=geometry.shape)
    return AzimuthalIntegrator(
        dist=geometry.distance_mm * 1e-3,
        # pyFAI's axis 1 is the slow (row, y) axis; the beam centre counts from the first pixel's corner.
        poni1=geometry.beam_center_y_px * pixel_m,
        poni2=geometry.beam_center_x_px * pixel_m,
        detector=detector,
        wavelength=geometry.wavelength_a * 1e-10,
    )


class AzimuthalIntegration:
    """Sums of a frame's pixels per q bin for one geometry (build with `integrator_for`, which caches).

    Per kept bin it knows the mean q (`q_inv_a`), the 1-σ q resolution
    (`dq_inv_a`: spread of pixel q inside the bin, pixel size and wavelength
    spread), the number of pixels and their summed solid angle in sr.
    """

    def __init__(self, geometry: DetectorGeometry, binning: QBinning) -> None:
        self.geometry = geometry
        self.binning = binning
        self.ai = pyfai_integrator(geometry)
        shape = geometry.shape
        q = np.asarray(self.ai.array_from_unit(shape=shape, typ="center", unit="q_A^-1", scale=True))
        solid_angle = np.asarray(self.ai.solidAngleArray(shape, absolute=True), dtype=np.float64)
        self.mask = self._beamstop_mask()
        valid = ~self.mask.ravel()
        q_flat = q.ravel()
        if not valid.any():
            raise AnalysisError(
                FailureCode.MISSING_GEOMETRY, "the beam stop covers the whole detector: no pixel to integrate"
            )
        q_lo, q_hi = float(q_flat[valid].min()), float(q_flat[valid].max())
        if binning.spacing == "log":
            edges = np.geomspace(q_lo, q_hi * (1 + 1e-9), binning.n_bins + 1)
        else:
            edges = np.linspace(q_lo, q_hi * (1 + 1e-9), binning.n_bins + 1)
        bin_of = np.searchsorted(edges, q_flat, side="right") - 1
        bin_of[~valid] = -1
        counts = np.bincount(bin_of[valid], minlength=binning.n_bins)
        kept = counts >= binning.min_pixels_per_bin
        # Renumber kept bins 0..k-1 and drop every other pixel from the matrix.
        new_index = np.full(binning.n_bins, -1)
        new_index[kept] = np.arange(int(kept.sum()))
        row = np.where(bin_of >= 0, new_index[np.clip(bin_of, 0, None)], -1)
        used = row >= 0
        columns = np.flatnonzero(used)
        n_kept = int(kept.sum())
        # Column-major (CSC): the mat-vec then walks the frame in memory order and scatters into a
        # few hundred bins that stay in cache; row-major walks each ring of pixels and misses cache.
        self.matrix = sp.csc_matrix(
            (np.ones(columns.size), (row[used], columns)), shape=(n_kept, q_flat.size), dtype=np.float64
        )
        self.pixel_used = used.reshape(shape)
        self.pixel_solid_angle_sr = solid_angle
        self.n_pixels = np.asarray(self.matrix.sum(axis=1)).ravel()
        self.solid_angle_sr = self.matrix @ solid_angle.ravel()
        self.q_inv_a = (self.matrix @ q_flat) / self.n_pixels
        within_var = np.maximum((self.matrix @ q_flat**2) / self.n_pixels - self.q_inv_a**2, 0.0)
        pixel_var = (self.matrix @ self._pixel_q_sigma(q_flat) ** 2) / self.n_pixels
        wavelength_var = (self.q_inv_a * geometry.wavelength_spread / FWHM_PER_SIGMA) ** 2
        self.dq_inv_a = np.sqrt(within_var + pixel_var + wavelength_var)

    def _beamstop_mask(self) -> npt.NDArray[np.bool_]:
        g = self.geometry
        rows, cols = np.indices(g.shape, dtype=np.float64)
        r_px = np.hypot(cols + 0.5 - g.beam_center_x_px, rows + 0.5 - g.beam_center_y_px)
        radius_px = g.beamstop_radius_mm / g.pixel_size_mm
        if radius_px == 0:
            return np.zeros(g.shape, dtype=bool)
        return np.asarray(r_px <= radius_px + self.binning.beamstop_margin_px)

    def _pixel_q_sigma(self, q_flat: FloatArray) -> FloatArray:
        """1-σ of q across one pixel: dq/dr times the pixel width over √12 (a uniform box)."""
        g = self.geometry
        two_theta = 2.0 * np.arcsin(np.clip(q_flat * g.wavelength_a / (4 * np.pi), 0, 1))
        r_mm = g.distance_mm * np.tan(two_theta)
        dq_dr = (
            (2 * np.pi / g.wavelength_a)
            * np.cos(two_theta / 2)
            * g.distance_mm
            / (g.distance_mm**2 + r_mm**2)
        )
        return np.asarray(dq_dr * g.pixel_size_mm / math.sqrt(12.0))

    @property
    def n_bins(self) -> int:
        return int(self.q_inv_a.size)

    def sum_counts(self, frame: npt.ArrayLike) -> FloatArray:
        """Σ counts per kept bin, masked pixels left out. `frame` has the geometry's (rows, columns) shape."""
        data = np.asarray(frame)
        if data.shape != self.geometry.shape:
            raise AnalysisError(
                FailureCode.BAD_FRAME,
                f"frame shape {data.shape} does not match the recorded geometry {self.geometry.shape}",
            )
        flat = data.reshape(-1)
        if flat.dtype != np.float64:
            flat = flat.astype(np.float64)
        return np.asarray(self.matrix @ flat)

    def pyfai_reference(
        self, frame: npt.ArrayLike, n_points: int | None = None
    ) -> tuple[FloatArray, FloatArray]:
        """pyFAI's own integration of `frame` (no pixel splitting, same mask): q in 1/Å and mean counts per
        unit solid angle relative to the PONI pixel. For cross-checks; the fast path is `sum_counts`."""
        result = self.ai.integrate1d(
            np.asarray(frame, dtype=np.float64),
            n_points or self.binning.n_bins,
            unit="q_A^-1",
            mask=self.mask,
            method=("no", "csr", "cython"),
            correctSolidAngle=True,
        )
        return np.asarray(result.radial, dtype=np.float64), np.asarray(result.intensity, dtype=np.float64)


@lru_cache(maxsize=16)
def integrator_for(geometry: DetectorGeometry, binning: QBinning = QBinning()) -> AzimuthalIntegration:
    """The integrator for a geometry, built once and cached: stations switch among a few configurations."""
    return AzimuthalIntegration(geometry, binning)
