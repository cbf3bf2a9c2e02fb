"""One candidate on one curve: the sasmodels kernel smeared by the curve's resolution, as residuals.

The model is evaluated with the same Gaussian pinhole resolution for every candidate (the curve's
`dq_inv_a`, the 1-σ width the reduction computed from the geometry), sampled finer than the data where
a candidate asks for it. `scale` and `background` enter linearly and are solved exactly for every
shape, so the search (`tandem.analysis.fit_search`) moves the shape parameters alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
from sasmodels.core import load_model
from sasmodels.direct_model import call_kernel
from sasmodels.resolution import Pinhole1D

from tandem.analysis.curves import Curve
from tandem.analysis.fit_candidates import CandidateModel

FloatArray = npt.NDArray[np.float64]


@lru_cache(maxsize=32)
def _kernel_model(name: str) -> Any:
    return load_model(name)


class FitProblem:
    """One candidate on one curve: maps the shape parameters to residuals.

    `scale` and `background` enter linearly, so they are not searched for: for every shape they are
    solved exactly (weighted linear least squares within their bounds, "variable projection"). The
    optimiser then searches the shape alone — two dimensions fewer, and none of the strong coupling
    between a size and the scale that makes its steps short.
    """

    def __init__(self, candidate: CandidateModel, curve: Curve) -> None:
        self.candidate = candidate
        self.curve = curve
        self.resolution = _resolution(curve, candidate.oversample)
        self.kernel = _kernel_model(candidate.sasmodel).make_kernel([self.resolution.q_calc])
        self.evaluations = 0
        #: parameters a start fixes that are not free (an integer number of layers, say)
        self.extra: dict[str, float] = {}
        self._weight = 1.0 / curve.sigma_per_cm
        self._y = curve.intensity_per_cm * self._weight
        #: the background cannot exceed the curve itself ...
        self.background_limit = float(np.abs(curve.intensity_per_cm).max()) or 1.0
        #: ... nor be negative beyond the noise: once the empty cell is subtracted, what is left flat is
        #: the sample's own incoherent and solvent scattering. A negative level let a wrong shape buy its
        #: fit (a polymer coil with a steep tail mimicked SANS micelles with a background of -0.8/cm).
        self.background_floor = -3.0 * float(np.nanmedian(curve.sigma_per_cm))

    def shape_vector(self, values: Mapping[str, float]) -> FloatArray:
        out = []
        for p in self.candidate.free:
            v = float(np.clip(values[p.name], p.lower, p.upper))
            out.append(math.log(max(v, 1e-12)) if p.log else v)
        return np.asarray(out)

    def shape_values(self, shape: FloatArray) -> dict[str, float]:
        return {
            p.name: (math.exp(x) if p.log else float(x))
            for p, x in zip(self.candidate.free, shape, strict=True)
        }

    def model(self, scale: float, background: float, shape: FloatArray) -> FloatArray:
        self.evaluations += 1
        pars = {
            **self.candidate.fixed,
            **self.extra,
            **self.shape_values(shape),
            "scale": scale,
            "background": background,
        }
        theory = call_kernel(self.kernel, pars)
        return np.asarray(self.resolution.apply(theory), dtype=np.float64)

    def linear(self, unit: FloatArray) -> tuple[float, float]:
        """The best scale (> 0) and background (from the floor to the curve's largest |I|) for a
        unit-scale model."""
        a, w, y = unit * self._weight, self._weight, self._y
        floor, limit = self.background_floor, self.background_limit
        tiny = 1e-30

        def chi2(scale: float, background: float) -> float:
            r = scale * a + background * w - y
            return float(r @ r)

        def scale_for(background: float) -> float:
            aa = float(a @ a)
            return max(float(a @ (y - background * w)) / aa, tiny) if aa > 0 else tiny

        def background_for(scale: float) -> float:
            return float(np.clip(w @ (y - scale * a) / (w @ w), floor, limit))

        try:
            (scale, background), *_ = np.linalg.lstsq(np.column_stack([a, w]), y, rcond=None)
        except np.linalg.LinAlgError:
            scale, background = math.nan, math.nan
        if np.isfinite(scale) and scale > 0 and floor <= background <= limit:
            return float(scale), float(background)
        # a bound is active: the optimum lies on one of the edges
        edges = [(tiny, background_for(tiny))] + [(scale_for(b), b) for b in (floor, limit)]
        return min(edges, key=lambda sb: chi2(*sb))

    def solve(self, shape: FloatArray) -> tuple[float, float, FloatArray]:
        """Scale, background and weighted residuals at `shape`."""
        unit = self.model(1.0, 0.0, shape)
        scale, background = self.linear(unit)
        return scale, background, (scale * unit + background - self.curve.intensity_per_cm) * self._weight

    def residuals(self, shape: FloatArray) -> FloatArray:
        return self.solve(shape)[2]

    def full_jacobian(self, shape: FloatArray) -> tuple[float, float, FloatArray]:
        """Scale, background and ∂residuals/∂[log scale, background, shape] (forward differences in
        the shape), for the covariance of every parameter."""
        unit = self.model(1.0, 0.0, shape)
        scale, background = self.linear(unit)
        columns = [scale * unit * self._weight, self._weight]
        for j in range(shape.size):
            step = 1e-6 * max(1.0, abs(float(shape[j])))
            moved = shape.copy()
            moved[j] += step
            columns.append(scale * (self.model(1.0, 0.0, moved) - unit) / step * self._weight)
        return scale, background, np.column_stack(columns)

    def bounds(self) -> tuple[FloatArray, FloatArray]:
        q_min = float(self.curve.q_inv_a[0])
        uppers = [
            p.upper if p.max_times_inverse_q_min is None else min(p.upper, p.max_times_inverse_q_min / q_min)
            for p in self.candidate.free
        ]
        lo = [math.log(p.lower) if p.log else p.lower for p in self.candidate.free]
        hi = [math.log(u) if p.log else u for p, u in zip(self.candidate.free, uppers, strict=True)]
        return np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)


def _resolution(curve: Curve, oversample: int) -> Pinhole1D:
    q = curve.q_inv_a
    if oversample > 1 and q.size > 1:
        # Fill between data points geometrically; Pinhole1D adds the points beyond the ends itself.
        fine = np.exp(
            np.interp(np.linspace(0, q.size - 1, (q.size - 1) * oversample + 1), np.arange(q.size), np.log(q))
        )
        base = Pinhole1D(q, curve.dq_inv_a)
        q_calc = np.union1d(fine, base.q_calc)
        return Pinhole1D(q, curve.dq_inv_a, q_calc=q_calc)
    return Pinhole1D(q, curve.dq_inv_a)
