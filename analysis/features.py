"""Model-free features of a curve: Guinier radius and I(0), Porod exponent, peak position and d-spacing.

Each feature is an `Estimate` with a 1-σ uncertainty and a validity flag; an
invalid estimate says why (`note`) and carries NaN so that nothing downstream
mistakes it for a measurement. They also seed the model fits with starting
values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import curve_fit
from scipy.signal import find_peaks

from tandem.analysis.curves import Curve

FloatArray = npt.NDArray[np.float64]
NAN = float("nan")


@dataclass(frozen=True)
class Estimate:
    value: float
    sigma: float
    valid: bool
    note: str = ""

    @classmethod
    def invalid(cls, note: str) -> Estimate:
        return cls(NAN, NAN, False, note)

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "sigma": self.sigma, "valid": self.valid, "note": self.note}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Estimate:
        return cls(float(data["value"]), float(data["sigma"]), bool(data["valid"]), str(data.get("note", "")))


@dataclass(frozen=True)
class FeatureSettings:
    #: the Guinier approximation holds for q·Rg below this (1.3 for compact particles)
    guinier_qrg_max: float = 1.3
    guinier_min_points: int = 6
    #: relative RMS misfit of ln I above which the low-q region is not Guinier-like (a peak, a power law)
    guinier_max_rms: float = 0.03
    #: fraction of the log-q range, from its top, where the Porod exponent is fitted
    porod_log_fraction: float = 0.35
    porod_min_points: int = 8
    #: a peak must stand this many σ of ln I above its surroundings, and `peak_min_prominence` in ln I
    peak_min_significance: float = 8.0
    peak_min_prominence: float = 0.05


@dataclass(frozen=True)
class Features:
    guinier_rg_a: Estimate
    guinier_i0_per_cm: Estimate
    porod_exponent: Estimate
    peak_q_inv_a: Estimate
    peak_d_spacing_a: Estimate
    guinier_q_range_inv_a: tuple[float, float] = (NAN, NAN)
    settings: FeatureSettings = field(default_factory=FeatureSettings)

    def estimates(self) -> dict[str, Estimate]:
        return {
            "guinier_rg_a": self.guinier_rg_a,
            "guinier_i0_per_cm": self.guinier_i0_per_cm,
            "porod_exponent": self.porod_exponent,
            "peak_q_inv_a": self.peak_q_inv_a,
            "peak_d_spacing_a": self.peak_d_spacing_a,
        }

    def scalars(self) -> dict[str, float]:
        """Flat `name`, `name_sigma` pairs, NaN where not valid: what an `Observation` carries."""
        out: dict[str, float] = {}
        for name, est in self.estimates().items():
            out[name] = est.value if est.valid else NAN
            out[f"{name}_sigma"] = est.sigma if est.valid else NAN
        return out

    def to_dict(self) -> dict[str, Any]:
        return {name: est.to_dict() for name, est in self.estimates().items()} | {
            "guinier_q_range_inv_a": list(self.guinier_q_range_inv_a)
        }


def _usable(curve: Curve) -> Curve:
    """Points with positive intensity and a finite, positive uncertainty: the ones that have a logarithm."""
    keep = (curve.intensity_per_cm > 0) & np.isfinite(curve.sigma_per_cm) & (curve.sigma_per_cm > 0)
    return curve.select(keep)


def _weighted_line(x: FloatArray, y: FloatArray, sigma: FloatArray) -> tuple[FloatArray, FloatArray, float]:
    """Weighted least squares y = a + b·x: parameters, covariance (scaled by χ²ᵣ when it exceeds 1), χ²ᵣ."""
    w = 1.0 / sigma
    design = np.column_stack([np.ones_like(x), x]) * w[:, None]
    params, *_ = np.linalg.lstsq(design, y * w, rcond=None)
    resid = (y - params[0] - params[1] * x) * w
    dof = max(x.size - 2, 1)
    chi2 = float(resid @ resid) / dof
    cov = np.linalg.inv(design.T @ design) * max(chi2, 1.0)
    return np.asarray(params, dtype=np.float64), np.asarray(cov, dtype=np.float64), chi2


def guinier(
    curve: Curve, settings: FeatureSettings | None = None
) -> tuple[Estimate, Estimate, tuple[float, float]]:
    """Rg (Å) and I(0) (1/cm) from ln I = ln I0 − (Rg²/3) q² over q·Rg < `guinier_qrg_max`.

    The window starts from the lowest q and is narrowed to q_max = qRg_max/Rg until Rg stops changing.
    Valid only if the window holds enough points, the first point sits inside the Guinier regime and
    the low-q curve really is Gaussian in q (not a power law or a peak).
    """
    s = settings or FeatureSettings()
    c = _usable(curve)
    if len(c) < s.guinier_min_points:
        note = f"only {len(c)} usable points; the Guinier fit needs {s.guinier_min_points}"
        return Estimate.invalid(note), Estimate.invalid(note), (NAN, NAN)
    q, y, sy = c.q_inv_a, np.log(c.intensity_per_cm), c.sigma_per_cm / c.intensity_per_cm
    n = s.guinier_min_points
    rg = NAN
    params = cov = None
    chi2 = NAN
    for _ in range(20):
        params, cov, chi2 = _weighted_line(q[:n] ** 2, y[:n], sy[:n])
        slope = params[1]
        if slope >= 0:
            note = "intensity does not fall at low q (no Guinier regime: a peak, aggregation or a flat curve)"
            return Estimate.invalid(note), Estimate.invalid(note), (NAN, NAN)
        rg = math.sqrt(-3.0 * slope)
        n_new = int(np.searchsorted(q, s.guinier_qrg_max / rg, side="right"))
        if n_new == n:
            break
        n = n_new
        if n < s.guinier_min_points:
            note = (
                f"only {n} points below q·Rg = {s.guinier_qrg_max} (Rg ≈ {rg:.3g} Å): "
                "the Guinier regime lies below the measured q range"
            )
            return Estimate.invalid(note), Estimate.invalid(note), (NAN, NAN)
    assert params is not None
    assert cov is not None
    window = (float(q[0]), float(q[n - 1]))
    rms = float(np.sqrt(np.mean((y[:n] - params[0] - params[1] * q[:n] ** 2) ** 2)))
    sigma_rg = math.sqrt(cov[1, 1]) * 3.0 / (2.0 * rg)
    i0 = math.exp(params[0])
    sigma_i0 = i0 * math.sqrt(cov[0, 0])
    problems = []
    if q[0] * rg > 1.0:
        problems.append(f"lowest q·Rg is {q[0] * rg:.2f} > 1: too little of the Guinier regime is measured")
    if rms > s.guinier_max_rms and chi2 > 4.0:
        problems.append(f"ln I misfit {rms:.3f} (χ²ᵣ {chi2:.1f}): the low-q curve is not Guinier-like")
    if problems:
        note = "; ".join(problems)
        return (Estimate(rg, sigma_rg, False, note), Estimate(i0, sigma_i0, False, note), window)
    return Estimate(rg, sigma_rg, True), Estimate(i0, sigma_i0, True), window


def _power_law(q: FloatArray, log_a: float, exponent: float, background: float) -> FloatArray:
    return np.asarray(np.exp(log_a - exponent * np.log(q)) + background)


def porod(curve: Curve, settings: FeatureSettings | None = None) -> Estimate:  # noqa: PLR0911
    """The exponent n of I ≈ A·q⁻ⁿ + B over the top of the q range (4 for sharp interfaces, 2 for sheets
    or Gaussian coils, 1 for rods, 5/3 for swollen chains). Valid if the power law rises clearly above the
    flat background where the window starts and n is pinned down to better than ±0.5."""
    s = settings or FeatureSettings()
    c = _usable(curve)
    if len(c) < s.porod_min_points:
        return Estimate.invalid(f"only {len(c)} usable points; the Porod fit needs {s.porod_min_points}")
    lq = np.log(c.q_inv_a)
    start = lq[-1] - s.porod_log_fraction * (lq[-1] - lq[0])
    window = c.select(lq >= start)
    if len(window) < s.porod_min_points:
        return Estimate.invalid(f"only {len(window)} points in the Porod window; need {s.porod_min_points}")
    q, i, si = window.q_inv_a, window.intensity_per_cm, window.sigma_per_cm
    # Start from the log-log slope between the window's ends and the last point as background.
    slope0 = -(math.log(i[0]) - math.log(i[-1])) / (math.log(q[0]) - math.log(q[-1]))
    n0 = float(np.clip(-slope0, 0.5, 6.0))
    p0 = [math.log(i[0]) + n0 * math.log(q[0]), n0, 0.0]
    try:
        params, cov = curve_fit(
            _power_law,
            q,
            i,
            p0=p0,
            sigma=si,
            absolute_sigma=True,
            bounds=([-np.inf, 0.0, -abs(i).max()], [np.inf, 8.0, abs(i).max()]),
            max_nfev=2000,
        )
    except (RuntimeError, ValueError) as exc:
        return Estimate.invalid(f"the power-law fit did not converge: {exc}")
    resid = (i - _power_law(q, *params)) / si
    chi2 = float(resid @ resid) / max(q.size - 3, 1)
    exponent = float(params[1])
    sigma = float(math.sqrt(cov[1, 1] * max(chi2, 1.0))) if np.isfinite(cov[1, 1]) else NAN
    power_at_start = math.exp(params[0] - exponent * math.log(q[0]))
    if not (np.isfinite(sigma) and sigma < 0.5):
        return Estimate(exponent, sigma, False, "the exponent is not pinned down (flat or noisy high-q tail)")
    if power_at_start < 2.0 * abs(params[2]):
        return Estimate(exponent, sigma, False, "the high-q tail is dominated by the flat background")
    if not 0.5 <= exponent <= 6.0:
        return Estimate(exponent, sigma, False, f"exponent {exponent:.2f} is outside the physical 0.5–6")
    return Estimate(exponent, sigma, True)


def peak(curve: Curve, settings: FeatureSettings | None = None) -> tuple[Estimate, Estimate]:
    """Position (1/Å) of the sharpest prominent local maximum of I(q) and the d-spacing 2π/q (Å).

    A peak counts only if it stands clear of the noise; its position comes from a parabola fitted to
    ln I around the maximum, which gives the uncertainty as well.
    """
    s = settings or FeatureSettings()
    c = _usable(curve)
    if len(c) < 7:
        note = "too few usable points to look for a peak"
        return Estimate.invalid(note), Estimate.invalid(note)
    y = np.log(c.intensity_per_cm)
    sy = c.sigma_per_cm / c.intensity_per_cm
    noise = float(np.median(sy))
    prominence = max(s.peak_min_significance * noise, s.peak_min_prominence)
    # No minimum width: a Bragg peak at good resolution can be narrower than two log-spaced bins;
    # the prominence threshold in σ is what keeps noise out.
    found, props = find_peaks(y, prominence=prominence, width=0)
    if found.size == 0:
        note = "no local maximum of I(q) stands out of the noise"
        return Estimate.invalid(note), Estimate.invalid(note)
    # Prefer sharp peaks: a Bragg reflection is narrow in log q, a form-factor maximum broad; among
    # peaks of one sharpness the more prominent wins.
    log_step = float(np.median(np.diff(np.log(c.q_inv_a))))
    relative_width = np.maximum(props["widths"] * log_step, log_step)
    best = int(np.argmax(props["prominences"] / relative_width))
    top = int(found[best])
    half_width = max(2, round(float(props["widths"][best]) / 2))
    lo, hi = max(0, top - half_width), min(len(c), top + half_width + 1)
    q, yy, syy = c.q_inv_a[lo:hi], y[lo:hi], sy[lo:hi]
    x = q - q[top - lo]
    w = 1.0 / syy
    design = np.column_stack([np.ones_like(x), x, x**2]) * w[:, None]
    params, *_ = np.linalg.lstsq(design, yy * w, rcond=None)
    resid = (yy - params[0] - params[1] * x - params[2] * x**2) * w
    chi2 = float(resid @ resid) / max(x.size - 3, 1)
    cov = np.linalg.inv(design.T @ design) * max(chi2, 1.0)
    _, b, a2 = params
    if a2 >= 0:
        q0, sq = float(q[top - lo]), float((q[-1] - q[0]) / 2)
    else:
        shift = -b / (2 * a2)
        # derivatives of q0 = q_top − b / (2 a2) with respect to (b, a2)
        grad = np.array([-1.0 / (2 * a2), b / (2 * a2**2)])
        q0 = float(q[top - lo] + shift)
        sq = float(math.sqrt(grad @ cov[1:, 1:] @ grad))
        if not q[0] <= q0 <= q[-1]:
            q0, sq = float(q[top - lo]), float((q[-1] - q[0]) / 2)
    d = 2 * math.pi / q0
    sd = d * sq / q0
    return Estimate(q0, sq, True), Estimate(d, sd, True)


def extract_features(curve: Curve, settings: FeatureSettings | None = None) -> Features:
    s = settings or FeatureSettings()
    rg, i0, window = guinier(curve, s)
    q_peak, d_peak = peak(curve, s)
    return Features(
        guinier_rg_a=rg,
        guinier_i0_per_cm=i0,
        porod_exponent=porod(curve, s),
        peak_q_inv_a=q_peak,
        peak_d_spacing_a=d_peak,
        guinier_q_range_inv_a=window,
        settings=s,
    )
