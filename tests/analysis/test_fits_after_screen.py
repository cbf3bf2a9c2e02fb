"""A full fit takes over the quick round its curve's screen already ran, and gives the same result."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from tandem.analysis import fitting
from tandem.analysis.curves import Curve
from tandem.analysis.features import extract_features
from tandem.analysis.fit_candidates import HOMOGENEOUS_CANDIDATES, CandidateModel
from tandem.analysis.fit_search import FitSettings
from tandem.analysis.fitting import fit_models, screen_models

HOMOGENEOUS = FitSettings(candidates=HOMOGENEOUS_CANDIDATES, workers=1)

CurveMaker = Callable[..., Curve]


@pytest.fixture
def quick_rounds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The candidates whose quick round is run, in order (each call of `fitting._begin`)."""
    calls: list[str] = []
    begin = fitting._begin

    def counted(candidate: CandidateModel, *args: object) -> object:
        calls.append(candidate.name)
        return begin(candidate, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(fitting, "_begin", counted)
    return calls


@pytest.mark.parametrize("phase", ["sphere", "cylinder", "lamellar"])
def test_the_fit_after_a_screen_skips_its_quick_round_and_chooses_alike(
    noisy_curve: CurveMaker, phase: str, quick_rounds: list[str]
) -> None:
    curve = noisy_curve(phase)
    features = extract_features(curve)
    alone = fit_models(curve, features, HOMOGENEOUS).to_dict()
    assert len(quick_rounds) == len(HOMOGENEOUS.candidates)

    quick_rounds.clear()
    screen_models(curve, features, HOMOGENEOUS)
    after_screen = fit_models(curve, features, replace(HOMOGENEOUS, workers=2)).to_dict()
    # one quick round per candidate, the screen's: the threads a fit uses do not change its work
    assert len(quick_rounds) == len(HOMOGENEOUS.candidates)
    assert after_screen == alone


def test_a_screen_is_taken_over_once(noisy_curve: CurveMaker, quick_rounds: list[str]) -> None:
    curve = noisy_curve("sphere")
    features = extract_features(curve)
    screen_models(curve, features, HOMOGENEOUS)
    first = fit_models(curve, features, HOMOGENEOUS).to_dict()
    second = fit_models(curve, features, HOMOGENEOUS).to_dict()
    # the second fit ran its own quick round (the screen's searches were polished by the first)
    assert len(quick_rounds) == 2 * len(HOMOGENEOUS.candidates)
    assert second == first


def test_a_screen_under_other_settings_is_not_taken_over(
    noisy_curve: CurveMaker, quick_rounds: list[str]
) -> None:
    curve = noisy_curve("sphere")
    features = extract_features(curve)
    screen_models(curve, features, replace(HOMOGENEOUS, quick_evaluations=5))
    fit_models(curve, features, HOMOGENEOUS)
    assert len(quick_rounds) == 2 * len(HOMOGENEOUS.candidates)


def test_a_screen_from_other_starting_points_is_not_taken_over(
    noisy_curve: CurveMaker, quick_rounds: list[str]
) -> None:
    curve = noisy_curve("sphere")
    features = extract_features(curve)
    # a Guinier radius twice as large moves the sphere's and the polymer's first starts
    other = replace(
        features, guinier_rg_a=replace(features.guinier_rg_a, value=2 * features.guinier_rg_a.value)
    )
    assert features.guinier_rg_a.valid
    screen_models(curve, other, HOMOGENEOUS)
    fit_models(curve, features, HOMOGENEOUS)
    assert len(quick_rounds) == 2 * len(HOMOGENEOUS.candidates)


def test_a_screen_of_another_curve_with_the_same_data_is_not_taken_over(
    noisy_curve: CurveMaker, quick_rounds: list[str]
) -> None:
    curve = noisy_curve("sphere")
    twin = Curve(curve.q_inv_a, curve.intensity_per_cm, curve.sigma_per_cm, curve.dq_inv_a)
    screen_models(curve, extract_features(curve), HOMOGENEOUS)
    fit_models(twin, extract_features(twin), HOMOGENEOUS)
    assert len(quick_rounds) == 2 * len(HOMOGENEOUS.candidates)


def test_screens_left_unfitted_are_forgotten_beyond_the_bound(noisy_curve: CurveMaker) -> None:
    memo = fitting._ScreenMemo(size=2)
    curves = [noisy_curve("sphere") for _ in range(3)]
    screens = []
    for curve in curves:
        screen, _ = fitting._quick_round(curve, extract_features(curve), HOMOGENEOUS)
        memo.put(curve, screen)
        screens.append(screen)
    assert memo.take(curves[0]) is None  # the oldest went when the third came
    assert memo.take(curves[2]) is screens[2]
    assert memo.take(curves[2]) is None  # handed over once
    assert memo.take(curves[1]) is screens[1]
