"""Model fits: candidate sasmodels models fitted with the instrument's resolution, chosen by BIC.

Every candidate is fitted on the same curve with the same Gaussian pinhole
resolution (the curve's `dq_inv_a`, the 1-σ width the reduction computed from
the geometry). SLDs are not known to analysis, so each model is fitted with a
unit contrast (`sld` − `sld_solvent` = 1e-6/Å²) and `scale` absorbs
volume fraction × contrast². Starting values come from the features (Guinier
radius, peak position, Porod exponent) and a small grid of shapes; `scale` and
`background` enter linearly and are solved exactly at every start, so the
non-linear search begins close. Bounded evaluations keep a fit fast; one that
does not converge is reported as such, not used.

`fit_models` starts with the quick round of every candidate, which is all that
`screen_models` does (labelling screens every curve before its fits). A screen
is remembered for the curve object it ran on, until that curve is fitted: a
`fit_models` of the same curve with the same settings (threads aside) and the
same starting points takes the screen's quick round over instead of repeating
it, with the same result.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
from sasmodels.core import load_model
from sasmodels.direct_model import call_kernel
from sasmodels.resolution import Pinhole1D
from scipy.optimize import least_squares

from tandem.analysis.curves import Curve
from tandem.analysis.failures import AnalysisError, FailureCode
from tandem.analysis.features import Features

FloatArray = npt.NDArray[np.float64]
Starts = Callable[[Features, Curve], list[dict[str, float]]]


@dataclass(frozen=True)
class FitParameter:
    """A free shape parameter, fitted in log space when `log` (lengths: positive, scale-free steps)."""

    name: str
    lower: float
    upper: float
    log: bool = True
    #: for lengths: cap the upper bound at this many 1/q_min. Longer objects look alike over the measured
    #: range, and some kernels (cylinder orientation averages) cost in proportion to q·length.
    max_times_inverse_q_min: float | None = None


@dataclass(frozen=True)
class CandidateModel:
    """One structural hypothesis: a sasmodels model, what is free, what is fixed, and where to start."""

    name: str
    sasmodel: str
    free: tuple[FitParameter, ...]
    starts: Starts
    fixed: Mapping[str, float] = field(default_factory=dict)
    #: model evaluation points per data point: sharp (Bragg) peaks need the model sampled finer than the
    #: data to be smeared correctly; smooth curves do not, and sampling costs time
    oversample: int = 1


def _rg_or(features: Features, default: float) -> float:
    rg = features.guinier_rg_a
    return rg.value if rg.valid else default


def _peak_d_or(features: Features, curve: Curve) -> float:
    if features.peak_d_spacing_a.valid:
        return features.peak_d_spacing_a.value
    return 2 * math.pi / float(np.sqrt(curve.q_inv_a[0] * curve.q_inv_a[-1]))


def _sizes(curve: Curve, n: int) -> list[float]:
    """Lengths the measured q range can see, from ~1/q_max to ~1/q_min, log-spaced."""
    return [float(x) for x in np.geomspace(3.0 / curve.q_inv_a[-1], 1.0 / curve.q_inv_a[0], n)]


def _sphere_starts(features: Features, curve: Curve) -> list[dict[str, float]]:
    # Rg² = 3R²/5 for a sphere
    rg = _rg_or(features, 0.0)
    radii = ([rg * math.sqrt(5 / 3)] if rg > 0 else []) + _sizes(curve, 6)
    return [{"radius": r, "radius_pd": pd} for r in radii for pd in (0.05, 0.15)]


def _cylinder_starts(features: Features, curve: Curve) -> list[dict[str, float]]:
    # Rods have a second length scale that Rg alone does not fix: a grid of radii and aspect ratios.
    return [
        {"radius": r, "length": 2 * aspect * r}
        for r in _sizes(curve, 6)
        for aspect in (1.0, 3.0, 10.0, 30.0)
        if 2 * aspect * r < 20 / curve.q_inv_a[0]
    ]


def _lamellar_starts(features: Features, curve: Curve) -> list[dict[str, float]]:
    d = _peak_d_or(features, curve)
    # sigma_d of the paracrystal is relative: σ_D / <D>
    return [{"d_spacing": d, "thickness": f * d, "sigma_d": s} for f in (0.15, 0.3, 0.5) for s in (0.03, 0.1)]


def _polymer_starts(features: Features, curve: Curve) -> list[dict[str, float]]:
    rg = _rg_or(features, 0.0)
    exponents = [2.0, 1.7]
    if features.porod_exponent.valid and 1.2 < features.porod_exponent.value < 3.0:
        exponents.insert(0, features.porod_exponent.value)
    sizes = ([rg] if rg > 0 else []) + _sizes(curve, 5)
    return [{"rg": r, "porod_exp": p} for r in sizes for p in exponents]


UNIT_CONTRAST = {"sld": 1.0, "sld_solvent": 0.0}
#: core-shell structures: the core's contrast is the unit, the shell's is fitted relative to it (signed)
UNIT_CORE = {"sld_core": 1.0, "sld_solvent": 0.0}
SHELL_RATIOS = (-2.0, -0.7, 1.5)


def _core_shell_sphere_starts(features: Features, curve: Curve) -> list[dict[str, float]]:
    return [
        {"radius": r, "thickness": t, "sld_shell": ratio, "radius_pd": 0.1}
        for r in _sizes(curve, 6)
        for t in (4.0, 8.0)
        for ratio in SHELL_RATIOS
    ]


def _core_shell_cylinder_starts(features: Features, curve: Curve) -> list[dict[str, float]]:
    return [
        {"radius": r, "thickness": t, "length": 2 * aspect * r, "sld_shell": ratio}
        for r in _sizes(curve, 5)
        for t in (6.0,)
        for aspect in (3.0, 30.0)
        for ratio in SHELL_RATIOS
        if 2 * aspect * r < 20 / curve.q_inv_a[0]
    ]


def _bilayer_stack_starts(features: Features, curve: Curve) -> list[dict[str, float]]:
    d = _peak_d_or(features, curve)
    spacings = [d] if features.peak_d_spacing_a.valid else _sizes(curve, 5)
    return [
        {
            "d_spacing": dd,
            "length_tail": tail,
            "length_head": 6.0,
            "sld_head": ratio,
            "Caille_parameter": eta,
            "Nlayers": n_layers,
        }
        for dd in spacings
        for tail in (8.0, 14.0)
        for ratio in (-1.0, 1.5)
        for eta in (0.1, 0.3)
        for n_layers in (6.0, 15.0)
    ]


def _fractal_starts(features: Features, curve: Curve) -> list[dict[str, float]]:
    return [
        {"radius": r, "fractal_dim_mass": dim, "cutoff_length": cut}
        for r in _sizes(curve, 4)
        for dim in (1.8, 2.5)
        for cut in (3.0 / float(curve.q_inv_a[0]), 30.0 / float(curve.q_inv_a[0]))
    ]


SPHERE = CandidateModel(
    "sphere",
    "sphere",
    (FitParameter("radius", 3.0, 2000.0), FitParameter("radius_pd", 0.0, 0.4, log=False)),
    _sphere_starts,
    {**UNIT_CONTRAST, "radius_pd_n": 35, "radius_pd_nsigma": 3},
    oversample=2,
)
CYLINDER = CandidateModel(
    "cylinder",
    "cylinder",
    (FitParameter("radius", 3.0, 1000.0), FitParameter("length", 6.0, 20000.0, max_times_inverse_q_min=10.0)),
    _cylinder_starts,
    UNIT_CONTRAST,
)
LAMELLAR = CandidateModel(
    "lamellar",
    "lamellar_stack_paracrystal",
    (
        FitParameter("d_spacing", 10.0, 2000.0),
        FitParameter("thickness", 5.0, 1000.0),
        FitParameter("sigma_d", 0.0, 0.4, log=False),
    ),
    _lamellar_starts,
    {**UNIT_CONTRAST, "Nlayers": 20},
    oversample=3,
)
POLYMER = CandidateModel(
    "polymer",
    "polymer_excl_volume",
    (FitParameter("rg", 3.0, 5000.0), FitParameter("porod_exp", 1.0, 3.5, log=False)),
    _polymer_starts,
)

CORE_SHELL_SPHERE = CandidateModel(
    "sphere",
    "core_shell_sphere",
    (
        FitParameter("radius", 3.0, 1000.0),
        FitParameter("thickness", 1.0, 100.0),
        FitParameter("sld_shell", -20.0, 20.0, log=False),
        FitParameter("radius_pd", 0.0, 0.4, log=False),
    ),
    _core_shell_sphere_starts,
    {**UNIT_CORE, "radius_pd_n": 25, "radius_pd_nsigma": 3},
    oversample=2,
)
CORE_SHELL_CYLINDER = CandidateModel(
    "cylinder",
    "core_shell_cylinder",
    (
        FitParameter("radius", 3.0, 500.0),
        FitParameter("thickness", 1.0, 100.0),
        FitParameter("length", 6.0, 20000.0, max_times_inverse_q_min=20.0),
        FitParameter("sld_shell", -20.0, 20.0, log=False),
    ),
    _core_shell_cylinder_starts,
    UNIT_CORE,
)
BILAYER_STACK = CandidateModel(
    "lamellar",
    "lamellar_hg_stack_caille",
    (
        FitParameter("d_spacing", 10.0, 3000.0),
        FitParameter("length_tail", 2.0, 50.0),
        FitParameter("length_head", 1.0, 30.0),
        FitParameter("sld_head", -20.0, 20.0, log=False),
        FitParameter("Caille_parameter", 0.0, 0.8, log=False),
    ),
    _bilayer_stack_starts,
    # the tails carry the unit contrast; the number of layers is an integer, fixed per start
    {"sld": 1.0, "sld_solvent": 0.0},
    oversample=3,
)
FRACTAL = CandidateModel(
    "fractal",
    "mass_fractal",
    (
        FitParameter("radius", 2.0, 1000.0),
        FitParameter("fractal_dim_mass", 1.0, 3.0, log=False),
        FitParameter("cutoff_length", 10.0, 1e5),
    ),
    _fractal_starts,
)

#: Homogeneous particles and a paracrystalline stack: fewer parameters, for systems without core-shell
#: structure (and for testing the machinery on models it can fit exactly).
HOMOGENEOUS_CANDIDATES: tuple[CandidateModel, ...] = (SPHERE, CYLINDER, LAMELLAR, POLYMER)
#: The structures of the formulation systems tandem targets: surfactant micelles (core of tails, shell of
#: heads) as spheres and rods, head/tail bilayer stacks, polymer coils and polymer-rich fractal clusters.
DEFAULT_CANDIDATES: tuple[CandidateModel, ...] = (
    CORE_SHELL_SPHERE,
    CORE_SHELL_CYLINDER,
    BILAYER_STACK,
    POLYMER,
    FRACTAL,
)


@dataclass(frozen=True)
class FitSettings:
    candidates: tuple[CandidateModel, ...] = DEFAULT_CANDIDATES
    #: cap on model evaluations per candidate, so a hopeless fit costs a bounded time
    max_evaluations: int = 100
    criterion: str = "bic"
    #: how many of the best starting points are polished by the local optimiser
    local_starts: int = 3
    #: relative change of χ² and of the parameters at which a fit has converged
    tolerance: float = 1e-6
    #: candidates are fitted in parallel threads (the sasmodels kernels release the GIL)
    workers: int = 2
    #: evaluations of the first, quick round (one start per candidate)
    quick_evaluations: int = 40
    #: candidates whose quick χ²ᵣ is within this factor of the best get the full fit
    shortlist_factor: float = 20.0
    #: the screening round and the multi-start search run on the curve merged to about this many points
    #: (`Curve.coarsened`); only the final polish of each shortlisted candidate sees every point.
    #: 0: no merging
    coarse_points: int = 50

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidates": {c.name: c.sasmodel for c in self.candidates},
            "max_evaluations": self.max_evaluations,
            "criterion": self.criterion,
            "local_starts": self.local_starts,
            "tolerance": self.tolerance,
            "quick_evaluations": self.quick_evaluations,
            "shortlist_factor": self.shortlist_factor,
            "coarse_points": self.coarse_points,
        }


@dataclass(frozen=True)
class ModelFit:
    """The outcome for one candidate. `parameters` maps each fitted name to (value, 1-σ)."""

    model: str
    sasmodel: str
    converged: bool
    parameters: Mapping[str, tuple[float, float]]
    chi2_reduced: float
    n_points: int
    n_free: int
    aic: float
    bic: float
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "sasmodel": self.sasmodel,
            "converged": self.converged,
            "parameters": {k: [v, s] for k, (v, s) in self.parameters.items()},
            "chi2_reduced": self.chi2_reduced,
            "n_points": self.n_points,
            "n_free": self.n_free,
            "aic": self.aic,
            "bic": self.bic,
            "message": self.message,
        }


@dataclass(frozen=True)
class FitReport:
    """All candidates' fits; `best` is the converged fit with the lowest criterion."""

    fits: tuple[ModelFit, ...]
    best: ModelFit
    criterion: str
    #: relative support of each converged model, exp(−Δ/2) normalised (Akaike/Schwarz weights)
    weights: Mapping[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "best_model": self.best.model,
            "criterion": self.criterion,
            "weights": dict(self.weights),
            "fits": [f.to_dict() for f in self.fits],
        }


@lru_cache(maxsize=32)
def _kernel_model(name: str) -> Any:
    return load_model(name)


class _Problem:
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


@dataclass
class _Trial:
    """A point of the search: parameter vector, the parameters its start fixed, and its χ² (or result)."""

    x: FloatArray
    extra: dict[str, float]
    chi2: float
    result: Any = None  # scipy's OptimizeResult once polished


class _Search:
    """One candidate through the rounds of `fit_models`.

    The starts are scored and the multi-start search is run on the coarse curve (neighbouring points
    merged, `Curve.coarsened`); only the final polish sees every point. Model evaluations cost in
    proportion to the points, and the search needs many more of them than the polish, which starts
    next to the optimum.
    """

    def __init__(self, candidate: CandidateModel, curve: Curve, coarse: Curve, features: Features) -> None:
        self.candidate = candidate
        self.fine = _Problem(candidate, curve)
        self.coarse = self.fine if coarse is curve else _Problem(candidate, coarse)
        self.bounds = self.fine.bounds()
        lo, hi = self.bounds
        self._margin = np.where(np.isfinite(hi - lo), 1e-6 * (hi - lo), 0.0)
        self.failure = ""
        free_names = {p.name for p in candidate.free}
        self.starts: list[_Trial] = []
        for values in candidate.starts(features, curve):
            self.coarse.extra = {k: float(v) for k, v in values.items() if k not in free_names}
            x = self.coarse.shape_vector(values)
            r = self.coarse.residuals(x)
            self.starts.append(_Trial(x, self.coarse.extra, float(r @ r)))
        self.starts.sort(key=lambda t: t.chi2)
        self.quick: _Trial | None = None

    @property
    def n_free(self) -> int:
        return 2 + len(self.candidate.free)

    def polish(
        self, problem: _Problem, trial: _Trial, max_evaluations: int, tolerance: float
    ) -> _Trial | None:
        lo, hi = self.bounds
        problem.extra = trial.extra
        try:
            result = least_squares(
                problem.residuals,
                np.clip(trial.x, lo + self._margin, hi - self._margin),
                bounds=(lo, hi),
                x_scale="jac",
                max_nfev=max_evaluations,
                method="trf",
                ftol=tolerance,
                xtol=tolerance,
            )
        except (ValueError, np.linalg.LinAlgError, FloatingPointError) as exc:
            self.failure = f"the optimiser failed: {exc}"
            return None
        return _Trial(np.asarray(result.x), trial.extra, float(result.fun @ result.fun), result)

    def quick_round(self, s: FitSettings) -> ModelFit:
        """The best start, polished briefly on the coarse curve: enough to tell a wrong structure."""
        if self.starts:
            self.quick = self.polish(
                self.coarse, self.starts[0], min(s.quick_evaluations, s.max_evaluations), s.tolerance
            )
        return self._fit(self.coarse, self.quick, s.quick_evaluations)

    def full_round(self, s: FitSettings) -> ModelFit:
        """Multi-start search on the coarse curve, then the best result polished on every point."""
        # Form-factor oscillations make χ² rugged: polish the few most promising starts, keep the best.
        seeds = [self.quick] if self.quick is not None else []
        seeds += self.starts[1 if self.quick is not None else 0 : s.local_starts]
        best: _Trial | None = None
        for seed in seeds:
            trial = self.polish(self.coarse, seed, s.max_evaluations, s.tolerance)
            if trial is not None and (best is None or _better(trial, best)):
                best = trial
        if best is not None and self.coarse is not self.fine:
            best = self.polish(self.fine, best, s.max_evaluations, s.tolerance)
        return self._fit(self.fine, best, s.max_evaluations)

    def _fit(self, problem: _Problem, trial: _Trial | None, max_evaluations: int) -> ModelFit:
        candidate = self.candidate
        n, k = len(problem.curve), self.n_free
        if trial is None or trial.result is None:
            return _failed_fit(candidate, n, self.failure or "no starting point")
        result = trial.result
        chi2 = trial.chi2
        chi2_red = chi2 / (n - k)
        names = ["scale", "background", *(p.name for p in candidate.free)]
        logs = [True, False, *(p.log for p in candidate.free)]
        problem.extra = trial.extra
        scale, background, jac = problem.full_jacobian(trial.x)
        try:
            cov = np.linalg.pinv(jac.T @ jac) * max(chi2_red, 1.0)
            sig = np.sqrt(np.clip(np.diag(cov), 0, None))
        except np.linalg.LinAlgError:
            sig = np.full(len(names), math.nan)
        params = {}
        values = [math.log(scale), background, *trial.x]
        for name, is_log, x, sx in zip(names, logs, values, sig, strict=True):
            value = math.exp(x) if is_log else float(x)
            params[name] = (value, value * float(sx) if is_log else float(sx))
        for name, value in trial.extra.items():
            params[name] = (value, 0.0)  # fixed by its start, not fitted
        converged = bool(result.status > 0) and np.isfinite(chi2)
        message = "" if converged else f"no convergence in {max_evaluations} evaluations: {result.message}"
        return ModelFit(
            candidate.name,
            candidate.sasmodel,
            converged,
            params,
            chi2_red,
            n,
            k,
            chi2 + 2 * k,
            chi2 + k * math.log(n),
            message,
        )


def _better(trial: _Trial, than: _Trial) -> bool:
    """A converged result beats one that ran out of evaluations; then the lower χ² wins."""
    a, b = trial.result.status > 0, than.result.status > 0
    return (a and not b) or (a == b and trial.chi2 < than.chi2)


def _failed_fit(candidate: CandidateModel, n: int, message: str) -> ModelFit:
    nan_fit = {p.name: (math.nan, math.nan) for p in candidate.free}
    return ModelFit(
        candidate.name,
        candidate.sasmodel,
        False,
        nan_fit,
        math.nan,
        n,
        2 + len(candidate.free),
        math.inf,
        math.inf,
        message,
    )


def _coarse(curve: Curve, settings: FitSettings) -> Curve:
    if settings.coarse_points <= 0:
        return curve
    return curve.coarsened(max(1, len(curve) // settings.coarse_points))


@dataclass(frozen=True)
class _Screen:
    """A quick round kept for the full fit of the same curve (`screen_models` → `fit_models`)."""

    settings: FitSettings
    usable: Curve
    coarse: Curve
    #: each candidate's starting points, as the features gave them: the screen is only taken over by a
    #: fit whose features give the same starts
    starts: tuple[list[dict[str, float]], ...]
    begun: list[tuple[_Search | None, ModelFit]]


class _ScreenMemo:
    """The latest screens by curve object, each handed to at most one fit.

    Bounded, because labelling without fitting leaves screens behind (each holds its candidates'
    kernels); a curve is held weakly, and a screen is handed over only for the very object it ran on
    (an `id` can be reused once its curve is gone).
    """

    def __init__(self, size: int = 16) -> None:
        self._size = size
        self._screens: OrderedDict[int, tuple[weakref.ref[Curve], _Screen]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, curve: Curve, screen: _Screen) -> None:
        with self._lock:
            self._screens[id(curve)] = (weakref.ref(curve), screen)
            self._screens.move_to_end(id(curve))
            while len(self._screens) > self._size:
                self._screens.popitem(last=False)

    def take(self, curve: Curve) -> _Screen | None:
        with self._lock:
            ref, screen = self._screens.pop(id(curve), (None, None))
        return screen if ref is not None and ref() is curve else None


_SCREENS = _ScreenMemo()


def _same_work(a: FitSettings, b: FitSettings) -> bool:
    """Whether two settings fit alike (the number of threads changes nothing in the result)."""
    return replace(a, workers=1) == replace(b, workers=1)


def _screened(curve: Curve, features: Features, s: FitSettings) -> _Screen | None:
    """The remembered screen of `curve`, if it is the quick round this fit would run."""
    screen = _SCREENS.take(curve)
    if screen is None or not _same_work(screen.settings, s):
        return None
    starts = tuple(c.starts(features, screen.usable) for c in s.candidates)
    return screen if starts == screen.starts else None


#: what a model that cannot be evaluated (bad parameters for its kernel) raises: a non-converged fit
#: with the reason, so one broken candidate does not sink the others
_MODEL_ERRORS = (TypeError, ValueError, KeyError, ArithmeticError, np.linalg.LinAlgError)


def _begin(
    candidate: CandidateModel, curve: Curve, coarse: Curve, features: Features, s: FitSettings
) -> tuple[_Search | None, ModelFit]:
    """Set up the candidate's search and run its quick round."""
    n, k = len(curve), 2 + len(candidate.free)
    if n <= k:
        return None, _failed_fit(candidate, n, f"{n} points cannot constrain {k} parameters")
    try:
        search = _Search(candidate, curve, coarse, features)
        quick = search.quick_round(s)
        # a candidate whose quick round found nothing is done: its fit says why
        return (search if search.quick is not None else None), quick
    except _MODEL_ERRORS as exc:
        return None, _failed_fit(
            candidate, n, f"the model could not be evaluated: {type(exc).__name__}: {exc}"
        )


def _finish(search: _Search, s: FitSettings) -> ModelFit:
    try:
        return search.full_round(s)
    except _MODEL_ERRORS as exc:
        return _failed_fit(
            search.candidate,
            len(search.fine.curve),
            f"the model could not be evaluated: {type(exc).__name__}: {exc}",
        )


def fit_candidate(
    candidate: CandidateModel,
    curve: Curve,
    features: Features,
    settings: FitSettings | None = None,
) -> ModelFit:
    """Fit one candidate; a failure to converge is a `ModelFit` with `converged=False` and the reason."""
    s = settings or FitSettings()
    search, quick = _begin(candidate, curve, _coarse(curve, s), features, s)
    return quick if search is None else _finish(search, s)


def _in_parallel(work: Callable[[Any], Any], items: Sequence[Any], workers: int) -> list[Any]:
    if workers > 1 and len(items) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(work, items))
    return [work(item) for item in items]


def _quick_round(
    curve: Curve, features: Features, s: FitSettings
) -> tuple[_Screen, list[tuple[_Search | None, ModelFit]]]:
    """Every candidate set up and given its quick round (what `screen_models` is, and `fit_models`
    begins with)."""
    usable = curve.select(np.isfinite(curve.intensity_per_cm) & (curve.sigma_per_cm > 0))
    if len(usable) < 10:
        raise AnalysisError(
            FailureCode.TOO_FEW_POINTS, f"{len(usable)} usable points; model fits need at least 10"
        )
    coarse = _coarse(usable, s)
    begun: list[tuple[_Search | None, ModelFit]] = _in_parallel(
        lambda c: _begin(c, usable, coarse, features, s), s.candidates, s.workers
    )
    starts = tuple(c.starts(features, usable) for c in s.candidates)
    return _Screen(s, usable, coarse, starts, begun), begun


def fit_models(curve: Curve, features: Features, settings: FitSettings | None = None) -> FitReport:
    """Fit every candidate and choose the best by the information criterion.

    Raises `AnalysisError(FIT_NOT_CONVERGED)` when no candidate converged.
    """
    s = settings or FitSettings()
    if s.criterion not in ("aic", "bic"):
        raise AnalysisError(FailureCode.INTERNAL, f"criterion is 'aic' or 'bic', got {s.criterion!r}")
    # Two rounds: a quick fit of every candidate from its best start, then the full multi-start fit
    # of those whose χ² is anywhere near the best. Clearly wrong structures (χ² hundreds of times
    # the best) cannot win and are left at their quick fit, which is most of the time saved.
    screen = _screened(curve, features, s)
    begun = screen.begun if screen is not None else _quick_round(curve, features, s)[1]
    finite = [f.chi2_reduced for _, f in begun if math.isfinite(f.chi2_reduced)]
    best_first = min(finite) if finite else math.inf
    shortlist = [
        search
        for search, f in begun
        if search is not None
        and math.isfinite(f.chi2_reduced)
        and f.chi2_reduced <= s.shortlist_factor * max(best_first, 1.0)
    ]
    polished = dict(
        zip(
            (search.candidate.name for search in shortlist),
            _in_parallel(lambda search: _finish(search, s), shortlist, s.workers),
            strict=True,
        )
    )
    fits = tuple(
        polished.get(
            f.model,
            f
            if search is None
            else replace(
                f,
                converged=False,
                aic=math.inf,
                bic=math.inf,
                message=f"left at a quick fit: χ²ᵣ {f.chi2_reduced:.3g} is over {s.shortlist_factor:g}× "
                f"the best candidate's {best_first:.3g} (on the {f.n_points}-point screening curve)",
            ),
        )
        for search, f in begun
    )
    good = [f for f in fits if f.converged]
    if not good:
        reasons = "; ".join(f"{f.model}: {f.message}" for f in fits)
        raise AnalysisError(FailureCode.FIT_NOT_CONVERGED, f"no candidate model converged ({reasons})")
    score: Callable[[ModelFit], float] = (lambda f: f.bic) if s.criterion == "bic" else (lambda f: f.aic)
    best = min(good, key=score)
    deltas = {f.model: score(f) - score(best) for f in good}
    raw = {m: math.exp(-0.5 * d) for m, d in deltas.items()}
    total = sum(raw.values())
    return FitReport(fits, best, s.criterion, {m: v / total for m, v in raw.items()})


def screen_models(curve: Curve, features: Features, settings: FitSettings | None = None) -> FitReport:
    """Only the quick round of `fit_models`: every candidate from its best start, polished briefly on the
    coarse curve, chosen by the information criterion there.

    About a fifth of the full fits' cost, and enough to tell structures apart (what labelling needs);
    parameters are rough. Raises `AnalysisError(FIT_NOT_CONVERGED)` when no candidate produced a fit.
    """
    s = settings or FitSettings()
    screen, begun = _quick_round(curve, features, s)
    _SCREENS.put(curve, screen)
    # a quick round that ran out of evaluations still ranks the structures: keep every finite fit
    fits = tuple(f for _, f in begun)
    good = [f for f in fits if math.isfinite(f.chi2_reduced)]
    if not good:
        reasons = "; ".join(f"{f.model}: {f.message}" for f in fits)
        raise AnalysisError(FailureCode.FIT_NOT_CONVERGED, f"no candidate model could be fitted ({reasons})")
    score: Callable[[ModelFit], float] = (lambda f: f.bic) if s.criterion == "bic" else (lambda f: f.aic)
    best = min(good, key=score)
    raw = {f.model: math.exp(-0.5 * min(score(f) - score(best), 1400.0)) for f in good}
    total = sum(raw.values())
    return FitReport(fits, best, s.criterion, {m: v / total for m, v in raw.items()})


def model_curve(fit: ModelFit, candidates: Sequence[CandidateModel], curve: Curve) -> FloatArray:
    """The fitted model, smeared, at the curve's q points (for plots and residuals)."""
    candidate = next(c for c in candidates if c.name == fit.model)
    problem = _Problem(candidate, curve)
    values = {k: v for k, (v, _) in fit.parameters.items()}
    free = {p.name for p in candidate.free} | {"scale", "background"}
    problem.extra = {k: v for k, v in values.items() if k not in free}
    shape = problem.shape_vector(values)
    return problem.model(values["scale"], values["background"], shape)
