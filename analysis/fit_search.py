"""One candidate's search: its starts scored, the best polished in a quick round, then a multi-start fit.

What the fits are told (`FitSettings`) and what one candidate's fit comes to (`ModelFit`: values with
1-σ errors from the Jacobian, χ²ᵣ, AIC and BIC), and the search between them: bounded evaluations of
scipy's trust-region least squares on the shape parameters (`tandem.analysis.fit_problem`), on the
curve merged to a few points while searching and on every point for the final polish. A fit that does
not converge is reported as such, with the reason, not used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import least_squares

from tandem.analysis.curves import Curve
from tandem.analysis.features import Features
from tandem.analysis.fit_candidates import DEFAULT_CANDIDATES, CandidateModel
from tandem.analysis.fit_problem import FitProblem

FloatArray = npt.NDArray[np.float64]


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


@dataclass
class _Trial:
    """A point of the search: parameter vector, the parameters its start fixed, and its χ² (or result)."""

    x: FloatArray
    extra: dict[str, float]
    chi2: float
    result: Any = None  # scipy's OptimizeResult once polished


class CandidateSearch:
    """One candidate through the rounds of `fit_models`.

    The starts are scored and the multi-start search is run on the coarse curve (neighbouring points
    merged, `Curve.coarsened`); only the final polish sees every point. Model evaluations cost in
    proportion to the points, and the search needs many more of them than the polish, which starts
    next to the optimum.
    """

    def __init__(self, candidate: CandidateModel, curve: Curve, coarse: Curve, features: Features) -> None:
        self.candidate = candidate
        self.fine = FitProblem(candidate, curve)
        self.coarse = self.fine if coarse is curve else FitProblem(candidate, coarse)
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
        self, problem: FitProblem, trial: _Trial, max_evaluations: int, tolerance: float
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

    def _fit(self, problem: FitProblem, trial: _Trial | None, max_evaluations: int) -> ModelFit:
        candidate = self.candidate
        n, k = len(problem.curve), self.n_free
        if trial is None or trial.result is None:
            return failed_fit(candidate, n, self.failure or "no starting point")
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


def failed_fit(candidate: CandidateModel, n: int, message: str) -> ModelFit:
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
