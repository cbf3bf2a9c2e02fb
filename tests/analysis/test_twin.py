"""Analysis against the digital twin: its frames reduce and fit back to the truth that made them."""

from __future__ import annotations

import numpy as np
import pytest

from tandem.analysis.curves import Curve
from tandem.analysis.features import extract_features
from tandem.analysis.fitting import FitReport, fit_models
from tandem.analysis.labels import shape_distance
from tandem.sim.detector_image import simulate_frame
from tandem.sim.instruments import instrument_for
from tandem.sim.reduced_curve import twin_curve
from tandem.sim.systems import phase_of

pytestmark = pytest.mark.slow

#: one composition well inside each phase of the default system
PHASE_POINTS: dict[str, dict[str, float]] = {
    "spherical_micelles": {"SDS": 0.084, "PPG": 0.06, "NaCl": 0.0},
    "elongated_micelles": {"SDS": 0.084, "PPG": 0.06, "NaCl": 0.04},
    "lamellar": {"SDS": 0.137, "PPG": 0.08, "NaCl": 0.04},
    "polymer_solution": {"SDS": 0.031, "PPG": 0.04, "NaCl": 0.01},
    "polymer_clusters": {"SDS": 0.018, "PPG": 0.1, "NaCl": 0.05},
}
#: the candidate each phase's structure should be recognised as
EXPECTED_MODEL = {
    "spherical_micelles": "sphere",
    "elongated_micelles": "cylinder",
    "lamellar": "lamellar",
    "polymer_solution": "polymer",
    "polymer_clusters": "fractal",
}


def _fit(curve: Curve) -> FitReport:
    return fit_models(curve, extract_features(curve))


def test_phase_points_are_where_the_twin_says() -> None:
    for phase, composition in PHASE_POINTS.items():
        assert phase_of(composition) == phase


def test_reduced_curve_matches_the_true_absolute_intensity() -> None:
    curve, truth = twin_curve("saxs", PHASE_POINTS["spherical_micelles"], 10.0)
    instrument = instrument_for("saxs")
    frame = simulate_frame(
        instrument, None, PHASE_POINTS["spherical_micelles"], truth, 10.0, np.random.default_rng(1)
    )
    expected = np.interp(curve.q_inv_a, frame.q_inv_a, frame.true_intensity_per_cm)
    middle = (curve.q_inv_a > 0.02) & (curve.q_inv_a < 0.2)
    # 1/cm on the absolute scale: the empty cell is gone, the solvent's flat term stays (the fit's background)
    np.testing.assert_allclose(curve.intensity_per_cm[middle], expected[middle], rtol=0.05)


@pytest.mark.parametrize("phase", list(PHASE_POINTS))
def test_model_selection_on_the_twin(phase: str) -> None:
    curve, _ = twin_curve("saxs", PHASE_POINTS[phase], 10.0)
    report = _fit(curve)
    assert report.best.model == EXPECTED_MODEL[phase], {f.model: f.chi2_reduced for f in report.fits}


def test_sphere_radius_and_lamellar_spacing_are_recovered() -> None:
    curve, truth = twin_curve("saxs", PHASE_POINTS["spherical_micelles"], 10.0)
    best = _fit(curve).best
    assert best.model == "sphere"
    assert best.parameters["radius"][0] == pytest.approx(truth.parameters["radius"], rel=0.03)
    assert best.parameters["thickness"][0] == pytest.approx(truth.parameters["thickness"], rel=0.1)

    curve, truth = twin_curve("saxs", PHASE_POINTS["lamellar"], 10.0)
    best = _fit(curve).best
    assert best.model == "lamellar"
    assert best.parameters["d_spacing"][0] == pytest.approx(truth.parameters["d_spacing"], rel=0.03)
    features = extract_features(curve)
    assert features.peak_d_spacing_a.valid
    assert features.peak_d_spacing_a.value == pytest.approx(truth.parameters["d_spacing"], rel=0.03)


@pytest.mark.parametrize("phase", ["spherical_micelles", "polymer_solution"])
def test_saxs_and_sans_agree_in_shape_where_contrast_allows(phase: str) -> None:
    """Where X-rays and neutrons see the same structure with similar contrast profiles, the two
    stations' curves of one composition are closer in shape than curves of different phases."""
    saxs, _ = twin_curve("saxs", PHASE_POINTS[phase], 10.0)
    sans, _ = twin_curve("sans", PHASE_POINTS[phase], 1200.0, configuration="middle")
    across_stations = shape_distance(saxs, sans)
    others = [
        shape_distance(saxs, twin_curve("saxs", c, 10.0)[0]) for p, c in PHASE_POINTS.items() if p != phase
    ]
    assert across_stations < min(others)


def test_counting_noise_falls_with_exposure() -> None:
    short, _ = twin_curve("sans", PHASE_POINTS["polymer_solution"], 300.0, configuration="middle")
    long, _ = twin_curve("sans", PHASE_POINTS["polymer_solution"], 1200.0, configuration="middle")
    rel_short = np.median(short.sigma_per_cm / np.abs(short.intensity_per_cm))
    rel_long = np.median(long.sigma_per_cm / np.abs(long.intensity_per_cm))
    assert rel_long / rel_short == pytest.approx(0.5, rel=0.1)
