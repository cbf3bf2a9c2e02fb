"""Features and model fits on sasmodels curves: the truth comes back, and the right model wins."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from tandem.analysis.curves import Curve
from tandem.analysis.failures import AnalysisError, FailureCode
from tandem.analysis.features import extract_features, guinier, peak, porod
from tandem.analysis.fit_candidates import HOMOGENEOUS_CANDIDATES
from tandem.analysis.fit_search import FitSettings
from tandem.analysis.fitting import fit_models, screen_models

#: these curves are made with the homogeneous models: fit with those (the twin's tests use the defaults)
HOMOGENEOUS = FitSettings(candidates=HOMOGENEOUS_CANDIDATES)

CurveMaker = Callable[..., Curve]


def test_guinier_radius_of_a_sphere(noisy_curve: CurveMaker) -> None:
    curve = noisy_curve("sphere", relative_error=0.005)
    rg, i0, (q_lo, q_hi) = guinier(curve)
    assert rg.valid
    assert i0.valid
    # polydisperse spheres: Rg² = (3/5) <R⁸>/<R⁶>, a little above the mean radius's
    radius = 40.0
    assert rg.value == pytest.approx(math.sqrt(3 / 5) * radius, rel=0.08)
    assert 0 < rg.sigma < 0.05 * rg.value
    assert q_hi * rg.value <= 1.3 + 1e-9
    assert q_lo < q_hi


def test_guinier_is_invalid_where_there_is_no_guinier_regime(noisy_curve: CurveMaker) -> None:
    rg, i0, _ = guinier(noisy_curve("lamellar"))
    assert not rg.valid
    assert not i0.valid
    assert rg.note
    assert math.isnan(extract_features(noisy_curve("lamellar")).scalars()["guinier_rg_a"])


def test_lamellar_peak_gives_the_d_spacing(noisy_curve: CurveMaker) -> None:
    q0, d = peak(noisy_curve("lamellar"))
    assert q0.valid
    assert d.value == pytest.approx(120.0, rel=0.02)
    assert 0 < d.sigma < 0.05 * d.value


def test_no_peak_in_a_polymer_curve(noisy_curve: CurveMaker) -> None:
    q0, d = peak(noisy_curve("polymer"))
    assert not q0.valid
    assert not d.valid
    assert "noise" in q0.note


def test_porod_exponent_of_a_swollen_chain(noisy_curve: CurveMaker) -> None:
    n = porod(noisy_curve("polymer", q_max=1.0))
    assert n.valid
    # polymer_excl_volume's high-q slope is 1/ν = porod_exp
    assert n.value == pytest.approx(1.7, abs=0.15)


def test_features_of_too_short_a_curve_are_invalid_not_errors() -> None:
    q = np.array([0.01, 0.02, 0.03])
    curve = Curve(q, np.array([3.0, 2.0, 1.0]), np.full(3, 0.1), 0.01 * q)
    features = extract_features(curve)
    assert not any(e.valid for e in features.estimates().values())
    assert all(math.isnan(v) for v in features.scalars().values())


@pytest.mark.parametrize("phase", ["sphere", "cylinder", "lamellar", "polymer"])
def test_model_selection_on_distinct_phases(noisy_curve: CurveMaker, phase: str) -> None:
    curve = noisy_curve(phase)
    report = fit_models(curve, extract_features(curve), HOMOGENEOUS)
    assert report.best.model == phase
    assert report.best.converged
    assert report.best.chi2_reduced < 3.0
    assert report.weights[phase] > 0.99


def test_recovered_structure_parameters(noisy_curve: CurveMaker) -> None:
    sphere = noisy_curve("sphere")
    radius, sigma = fit_models(sphere, extract_features(sphere), HOMOGENEOUS).best.parameters["radius"]
    assert radius == pytest.approx(40.0, rel=0.02)
    assert abs(radius - 40.0) < 5 * sigma + 0.2
    lamellar = noisy_curve("lamellar")
    d, _ = fit_models(lamellar, extract_features(lamellar), HOMOGENEOUS).best.parameters["d_spacing"]
    assert d == pytest.approx(120.0, rel=0.02)
    cylinder = noisy_curve("cylinder")
    best = fit_models(cylinder, extract_features(cylinder), HOMOGENEOUS).best.parameters
    assert best["radius"][0] == pytest.approx(20.0, rel=0.03)
    assert best["length"][0] == pytest.approx(300.0, rel=0.05)


def test_a_fit_that_cannot_converge_is_a_typed_failure(noisy_curve: CurveMaker) -> None:
    curve = noisy_curve("sphere")
    with pytest.raises(AnalysisError) as info:
        fit_models(
            curve, extract_features(curve), FitSettings(candidates=HOMOGENEOUS_CANDIDATES, max_evaluations=1)
        )
    assert info.value.code is FailureCode.FIT_NOT_CONVERGED
    assert "sphere" in info.value.message


def test_too_few_points_to_fit() -> None:
    q = np.geomspace(0.01, 0.1, 5)
    curve = Curve(q, 1 / q, 0.01 / q, 0.01 * q)
    with pytest.raises(AnalysisError) as info:
        fit_models(curve, extract_features(curve))
    assert info.value.code is FailureCode.TOO_FEW_POINTS


# not the short rod of `noisy_curve` (length 15 radii, from a sphere-like start): the screen's brief
# polish can leave it at a polydisperse sphere, which only the full fit rules out
@pytest.mark.parametrize("phase", ["sphere", "lamellar", "polymer"])
def test_the_screen_alone_tells_distinct_structures_apart(noisy_curve: CurveMaker, phase: str) -> None:
    curve = noisy_curve(phase)
    report = screen_models(curve, extract_features(curve), HOMOGENEOUS)
    assert report.best.model == phase
    assert report.weights[phase] > 0.99
    assert sum(report.weights.values()) == pytest.approx(1.0)
    # the screen works on the merged curve: fewer points than the full fit sees
    assert report.best.n_points < len(curve)


def test_the_screen_needs_enough_points() -> None:
    q = np.geomspace(0.01, 0.1, 5)
    curve = Curve(q, 1 / q, 0.01 / q, 0.01 * q)
    with pytest.raises(AnalysisError) as info:
        screen_models(curve, extract_features(curve))
    assert info.value.code is FailureCode.TOO_FEW_POINTS
