"""A curve's shape, free of everything that is not the sample's structure.

Phase identity compares curves with each other, and curves of one phase come with
different absolute scales (concentration, contrast, a calibration error), different
flat backgrounds (incoherent scattering, an unsubtracted solvent), different q ranges
and q grids (another configuration, another facility) and different resolutions. The
descriptor keeps only what a phase has in common:

1. **Flat background removed.** ``I(q) = B + A q^-p`` is fitted to the top third of the
   curve's log-q range (``p`` on a grid, ``A`` and ``B`` linear, ``B`` at least 0);
   ``S = I - B`` is the structure. The uncertainty of ``B`` (and 2 % of it, for the
   shape of the tail) is added to every point's, so where the structure sinks into the
   background its slope counts for little.
2. **One log-q grid for every curve.** ``S`` is merged into fixed bins of 0.1 in ln q
   (weighted by 1/σ²), whatever the curve's own grid; a bin counts only where the
   structure stands 3 σ above zero.
3. **Log-log slopes.** The local slope of ln S against ln q, a weighted line through seven
   neighbouring bins (0.7 in ln q: wider than any pinhole resolution's blur of a
   power law, narrower than the features that tell structures apart), clipped to
   [-4.5, 1.5]: a fall steeper than Porod's is a form-factor minimum and a rise is a
   peak, and how deep or sharp they are says more about polydispersity and
   resolution than about the phase. A slope does not care about absolute scale.

What comparing two descriptors means is `tandem.analysis.phases.grouping`'s business.

A curve that cannot be described is refused with an `Exclusion` reason (never grouped
by default): non-finite or clearly negative intensities, too few points, too narrow a
q range, or no structure above its background (a flat curve).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from tandem.analysis.curves import Curve
from tandem.errors import TandemError

FloatArray = npt.NDArray[np.float64]

#: width of a log-q bin (natural log): 10 % steps in q
BIN_WIDTH_LN_Q = 0.1
#: the shared grid spans 1e-4 to 10 1/Å: every SAXS, SANS and USAXS range falls inside it
LN_Q_EDGES: FloatArray = np.arange(math.log(1e-4), math.log(10.0) + 1e-9, BIN_WIDTH_LN_Q)
LN_Q_CENTRES: FloatArray = 0.5 * (LN_Q_EDGES[1:] + LN_Q_EDGES[:-1])
N_BINS = int(LN_Q_CENTRES.size)


class Exclusion(StrEnum):
    """Why a run is left out of phase finding."""

    NON_FINITE = "non_finite"
    NEGATIVE_INTENSITY = "negative_intensity"
    TOO_FEW_POINTS = "too_few_points"
    NARROW_Q_RANGE = "narrow_q_range"
    FLAT = "flat"
    NO_OVERLAP = "no_overlap"
    UNKNOWN_PROBE = "unknown_probe"


class CurveRefusedError(TandemError, ValueError):
    """A curve phase finding cannot use; `reason` says which rule it broke."""

    def __init__(self, reason: Exclusion, message: str) -> None:
        self.reason = reason
        self.message = message
        super().__init__(f"{reason.value}: {message}")


@dataclass(frozen=True)
class DescriptorSettings:
    #: share of the curve's log-q range, from its top, where the flat background is fitted
    background_share: float = 0.33
    #: exponents tried for the decaying term of the background fit
    background_exponents: tuple[float, ...] = tuple(np.arange(0.5, 6.01, 0.25).round(2))
    #: relative uncertainty of the background level beyond its fit's (the tail is not a pure power law)
    background_relative_error: float = 0.02
    #: a bin counts where the structure stands this many σ above zero
    significance: float = 3.0
    #: bins on each side of a slope's own: the slope is a line through 2 h + 1 bins
    slope_half_window: int = 3
    #: slopes are clipped to this range: steeper falls are form-factor minima, rises are peaks, and how
    #: deep a minimum or how sharp a peak is says more about polydispersity and resolution than phase
    slope_limits: tuple[float, float] = (-4.5, 1.5)
    #: fewest points a curve needs, and the smallest q_max / q_min
    min_points: int = 12
    min_q_ratio: float = 3.0
    #: fewest bins with structure: fewer is a flat curve
    min_structure_bins: int = 5
    #: share of points that may be non-finite (they are dropped), and that may lie 3 σ below zero
    max_non_finite_share: float = 0.1
    max_negative_share: float = 0.05


@dataclass(frozen=True, eq=False)
class ShapeDescriptor:
    """Log-log slopes of a curve's structure on the shared log-q grid (NaN where it has none)."""

    slopes: FloatArray
    slope_sigmas: FloatArray
    #: the flat background that was taken off, 1/cm
    background_per_cm: float
    q_min_inv_a: float
    q_max_inv_a: float

    @property
    def n_bins(self) -> int:
        return int(np.count_nonzero(np.isfinite(self.slopes)))


def _clean(curve: Curve, s: DescriptorSettings) -> tuple[FloatArray, FloatArray, FloatArray]:
    q, i, sigma = curve.q_inv_a, curve.intensity_per_cm, curve.sigma_per_cm
    if q.size == 0:
        raise CurveRefusedError(Exclusion.TOO_FEW_POINTS, "the curve has no points")
    finite = np.isfinite(q) & (q > 0) & np.isfinite(i)
    if 1.0 - finite.mean() > s.max_non_finite_share:
        raise CurveRefusedError(
            Exclusion.NON_FINITE,
            f"{np.count_nonzero(~finite)} of {q.size} points are NaN or infinite "
            f"(at most {s.max_non_finite_share:.0%} may be)",
        )
    q, i, sigma = q[finite], i[finite], sigma[finite]
    known = np.isfinite(sigma) & (sigma > 0)
    if not known.any():
        # no uncertainties given (a text file with two columns): assume 3 % of the intensity
        sigma = np.maximum(0.03 * np.abs(i), 1e-12 * max(float(np.max(np.abs(i))), 1e-30))
    else:
        sigma = np.where(known, sigma, np.median(sigma[known]))
    negative = i < -3.0 * sigma
    if negative.mean() > s.max_negative_share:
        raise CurveRefusedError(
            Exclusion.NEGATIVE_INTENSITY,
            f"{np.count_nonzero(negative)} of {q.size} points lie more than 3 σ below zero "
            f"(at most {s.max_negative_share:.0%} may: an over-subtracted background?)",
        )
    if q.size < s.min_points:
        raise CurveRefusedError(
            Exclusion.TOO_FEW_POINTS, f"{q.size} usable points; phase finding needs at least {s.min_points}"
        )
    if q[-1] / q[0] < s.min_q_ratio:
        raise CurveRefusedError(
            Exclusion.NARROW_Q_RANGE,
            f"q spans {q[0]:.3g}-{q[-1]:.3g} 1/Å, a factor {q[-1] / q[0]:.2f}; "
            f"at least {s.min_q_ratio:g} is needed",
        )
    return q, i, sigma


def flat_background(
    q: FloatArray, intensity: FloatArray, sigma: FloatArray, s: DescriptorSettings | None = None
) -> tuple[float, float]:
    """The flat level ``B`` of ``B + A q^-p`` fitted to the top of the curve, and its 1-σ error."""
    s = s or DescriptorSettings()
    ln_q = np.log(q)
    top = ln_q >= ln_q[-1] - s.background_share * (ln_q[-1] - ln_q[0])
    qq, ii, w = q[top], intensity[top], 1.0 / sigma[top]
    if qq.size < 4:
        return 0.0, 0.0
    best = (math.inf, 0.0, 0.0)
    for p in s.background_exponents:
        design = np.stack([np.ones_like(qq), (qq / qq[0]) ** -p], axis=1) * w[:, None]
        coef, *_ = np.linalg.lstsq(design, ii * w, rcond=None)
        if coef[1] < 0:  # a rising tail is not a decaying structure: the level alone
            coef = np.array([np.sum(ii * w * w) / np.sum(w * w), 0.0])
            design = design[:, :1]
            coef_used = coef[:1]
        else:
            coef_used = coef
        residual = float(np.sum((design @ coef_used - ii * w) ** 2))
        if residual < best[0]:
            # the level's variance from the normal equations, inflated by a poor fit (χ²ᵣ > 1)
            dof = max(qq.size - design.shape[1] - 1, 1)
            variance = float(np.linalg.pinv(design.T @ design)[0, 0]) * max(residual / dof, 1.0)
            best = (residual, float(coef[0]), math.sqrt(max(variance, 0.0)))
    # a flat background only ever adds: a negative level is a peak or a bend in the tail that the
    # power law could not follow, and subtracting it would invent structure
    level = max(best[1], 0.0)
    # nor can it exceed the curve where the curve is lowest: a fit that a peak spoils is not
    # allowed to make every point insignificant through a huge error on the level
    floor = float(np.min(ii))
    return level, min(best[2], max(floor - level, 0.0) + 0.1 * max(floor, 0.0))


def describe(curve: Curve, settings: DescriptorSettings | None = None) -> ShapeDescriptor:
    """The shape descriptor of `curve`; raises `CurveRefusedError` for a curve phase finding cannot use."""
    s = settings or DescriptorSettings()
    q, i, sigma = _clean(curve, s)
    level, level_error = flat_background(q, i, sigma, s)
    structure = i - level
    total_sigma = np.sqrt(sigma**2 + level_error**2 + (s.background_relative_error * level) ** 2)
    which = np.digitize(np.log(q), LN_Q_EDGES) - 1
    inside = (which >= 0) & (which < N_BINS)
    weights = 1.0 / total_sigma[inside] ** 2
    bins = which[inside]
    weight_sum = np.bincount(bins, weights, N_BINS)
    filled = weight_sum > 0
    mean = np.zeros(N_BINS)
    mean[filled] = np.bincount(bins, weights * structure[inside], N_BINS)[filled] / weight_sum[filled]
    mean_sigma = np.full(N_BINS, np.inf)
    mean_sigma[filled] = 1.0 / np.sqrt(weight_sum[filled])
    significant = filled & (mean > s.significance * mean_sigma)
    if np.count_nonzero(significant) < s.min_structure_bins:
        raise CurveRefusedError(
            Exclusion.FLAT,
            f"only {np.count_nonzero(significant)} log-q bins stand {s.significance:g} σ above the flat "
            f"background ({level:.3g} 1/cm); at least {s.min_structure_bins} are needed to tell a shape",
        )
    ln_s = np.where(significant, np.log(np.where(significant, mean, 1.0)), np.nan)
    ln_s_sigma = np.where(significant, mean_sigma / np.where(significant, mean, 1.0), np.nan)
    slopes, slope_sigmas = _local_slopes(ln_s, ln_s_sigma, s.slope_half_window)
    slopes = np.clip(slopes, *s.slope_limits)
    if np.count_nonzero(np.isfinite(slopes)) < s.min_structure_bins:
        raise CurveRefusedError(
            Exclusion.FLAT,
            "the structure above the background is too patchy to take slopes of "
            f"(fewer than {s.min_structure_bins} bins with neighbours)",
        )
    return ShapeDescriptor(slopes, slope_sigmas, level, float(q[0]), float(q[-1]))


def _local_slopes(ln_s: FloatArray, ln_s_sigma: FloatArray, half: int) -> tuple[FloatArray, FloatArray]:
    """Weighted least-squares slopes of ln S over ln q through each bin and its neighbours."""
    n = ln_s.size
    slopes = np.full(n, np.nan)
    sigmas = np.full(n, np.nan)
    valid = np.isfinite(ln_s)
    # a floor on each bin's error: ln S is never known better than 1 % for the slope's sake
    w_all = np.where(valid, 1.0 / (np.nan_to_num(ln_s_sigma, nan=1.0) ** 2 + 1e-4), 0.0)
    for k in np.nonzero(valid)[0]:
        lo, hi = max(0, k - half), min(n, k + half + 1)
        use = valid[lo:hi]
        if np.count_nonzero(use) < 3:
            continue
        x = LN_Q_CENTRES[lo:hi][use]
        y = ln_s[lo:hi][use]
        w = w_all[lo:hi][use]
        x_mean = np.sum(w * x) / np.sum(w)
        sxx = np.sum(w * (x - x_mean) ** 2)
        slopes[k] = np.sum(w * (x - x_mean) * y) / sxx
        sigmas[k] = math.sqrt(1.0 / sxx)
    return slopes, sigmas
