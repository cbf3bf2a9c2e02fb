"""Model fits: every candidate sasmodels model fitted to a curve with its resolution, the best chosen by BIC.

What each candidate is, with its bounds and starts, is the catalogue (`tandem.analysis.fit_candidates`);
one candidate on one curve as residuals, its scale and background solved linearly, is
`tandem.analysis.fit_problem`; one candidate's search and what a fit reports, `tandem.analysis.fit_search`.
This module runs every candidate through the rounds and chooses between them (AIC or BIC, with the
Akaike/Schwarz weights of the rest); import the fits from here.

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
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from tandem.analysis.curves import Curve
from tandem.analysis.failures import AnalysisError, FailureCode
from tandem.analysis.features import Features
from tandem.analysis.fit_candidates import CandidateModel
from tandem.analysis.fit_search import CandidateSearch, FitSettings, ModelFit, failed_fit

__all__ = [
    "FitReport",
    "fit_models",
    "screen_models",
]

FloatArray = npt.NDArray[np.float64]


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
    begun: list[tuple[CandidateSearch | None, ModelFit]]


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
) -> tuple[CandidateSearch | None, ModelFit]:
    """Set up the candidate's search and run its quick round."""
    n, k = len(curve), 2 + len(candidate.free)
    if n <= k:
        return None, failed_fit(candidate, n, f"{n} points cannot constrain {k} parameters")
    try:
        search = CandidateSearch(candidate, curve, coarse, features)
        quick = search.quick_round(s)
        # a candidate whose quick round found nothing is done: its fit says why
        return (search if search.quick is not None else None), quick
    except _MODEL_ERRORS as exc:
        return None, failed_fit(
            candidate, n, f"the model could not be evaluated: {type(exc).__name__}: {exc}"
        )


def _finish(search: CandidateSearch, s: FitSettings) -> ModelFit:
    try:
        return search.full_round(s)
    except _MODEL_ERRORS as exc:
        return failed_fit(
            search.candidate,
            len(search.fine.curve),
            f"the model could not be evaluated: {type(exc).__name__}: {exc}",
        )


def _in_parallel(work: Callable[[Any], Any], items: Sequence[Any], workers: int) -> list[Any]:
    if workers > 1 and len(items) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(work, items))
    return [work(item) for item in items]


def _quick_round(
    curve: Curve, features: Features, s: FitSettings
) -> tuple[_Screen, list[tuple[CandidateSearch | None, ModelFit]]]:
    """Every candidate set up and given its quick round (what `screen_models` is, and `fit_models`
    begins with)."""
    usable = curve.select(np.isfinite(curve.intensity_per_cm) & (curve.sigma_per_cm > 0))
    if len(usable) < 10:
        raise AnalysisError(
            FailureCode.TOO_FEW_POINTS, f"{len(usable)} usable points; model fits need at least 10"
        )
    coarse = _coarse(usable, s)
    begun: list[tuple[CandidateSearch | None, ModelFit]] = _in_parallel(
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
