"""Reduction: the integrator agrees with pyFAI, the absolute scale is recovered, bad frames fail cleanly."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from tandem.analysis.failures import AnalysisError, FailureCode
from tandem.analysis.integration import QBinning, integrator_for
from tandem.analysis.reduction import Exposure, geometry_from_metadata, reduce_exposure, subtract_solvent
from tandem.geometry import DetectorGeometry


def test_integrator_is_cached_per_geometry(small_geometry: DetectorGeometry) -> None:
    assert integrator_for(small_geometry) is integrator_for(small_geometry)
    assert integrator_for(small_geometry) is not integrator_for(small_geometry, QBinning(n_bins=50))


def test_matrix_integration_agrees_with_pyfai(saxs_geometry: DetectorGeometry) -> None:
    integ = integrator_for(saxs_geometry)
    q = integ.ai.array_from_unit(shape=saxs_geometry.shape, typ="center", unit="q_A^-1", scale=True)
    per_sr = 1e6 * np.exp(-((q * 50) ** 2) / 3) + 10.0
    frame = per_sr * integ.pixel_solid_angle_sr
    ours = integ.sum_counts(frame) / integ.solid_angle_sr
    q_ref, ref_rel = integ.pyfai_reference(frame, 300)
    # pyFAI normalises solid angle to the PONI pixel's: convert ours to the same unit
    poni_sr = (saxs_geometry.pixel_size_mm / saxs_geometry.distance_mm) ** 2
    inside = (q_ref > integ.q_inv_a[2]) & (q_ref < integ.q_inv_a[-3])
    ours_at_ref = np.interp(q_ref[inside], integ.q_inv_a, ours * poni_sr)
    np.testing.assert_allclose(ours_at_ref, ref_rel[inside], rtol=0.02)
    # and both match the function that made the frame
    np.testing.assert_allclose(ours, 1e6 * np.exp(-((integ.q_inv_a * 50) ** 2) / 3) + 10.0, rtol=0.02)


def test_beam_stop_and_resolution(saxs_geometry: DetectorGeometry) -> None:
    integ = integrator_for(saxs_geometry)
    assert integ.q_inv_a[0] >= saxs_geometry.q_min_inv_a
    assert np.all(np.diff(integ.q_inv_a) > 0)
    assert not integ.pixel_used[int(saxs_geometry.beam_center_y_px), int(saxs_geometry.beam_center_x_px)]
    assert np.all(integ.dq_inv_a > 0)
    assert np.all(integ.dq_inv_a < 0.2 * integ.q_inv_a)


@pytest.mark.parametrize("geometry_name", ["saxs_geometry", "small_geometry"])
def test_absolute_scale_is_recovered(
    geometry_name: str,
    request: pytest.FixtureRequest,
    rng: np.random.Generator,
    counts_for: Callable[..., np.ndarray],
    phase_intensity: Callable[[str, np.ndarray], np.ndarray],
) -> None:
    geometry = request.getfixturevalue(geometry_name)
    incident, transmission, thickness = 5e11, 0.6, 1.5
    if geometry_name == "small_geometry":
        incident = 1e9  # neutrons: far fewer particles, far larger pixels

    def truth(q: np.ndarray) -> np.ndarray:
        return phase_intensity("sphere", q)

    mean = counts_for(geometry, truth, incident=incident, transmission=transmission, thickness_mm=thickness)
    frame = rng.poisson(mean).astype(np.uint32)
    curve = reduce_exposure(Exposure(frame, 10.0, incident, transmission), geometry, thickness_mm=thickness)
    expected = truth(curve.q_inv_a)
    pulls = (curve.intensity_per_cm - expected) / curve.sigma_per_cm
    # bins are averages over pixels, so where the curve bends the bin value differs slightly from I(<q>)
    smooth = curve.q_inv_a < 0.07
    assert abs(float(np.median(pulls[smooth]))) < 1.0
    np.testing.assert_allclose(curve.intensity_per_cm[smooth], expected[smooth], rtol=0.1)
    ratio = np.sum(curve.intensity_per_cm[smooth]) / np.sum(expected[smooth])
    assert ratio == pytest.approx(1.0, abs=0.01)


def test_empty_cell_subtraction_and_noise_scaling(
    saxs_geometry: DetectorGeometry,
    rng: np.random.Generator,
    counts_for: Callable[..., np.ndarray],
    phase_intensity: Callable[[str, np.ndarray], np.ndarray],
) -> None:
    def cell(q: np.ndarray) -> np.ndarray:
        return 0.05 + 0.001 * q**-1.0

    def sample_and_cell(q: np.ndarray) -> np.ndarray:
        return phase_intensity("sphere", q) + cell(q)

    thickness, t_sample, t_cell = 1.0, 0.5, 0.9
    curves = {}
    for incident in (1e11, 4e11):
        s = rng.poisson(
            counts_for(
                saxs_geometry,
                sample_and_cell,
                incident=incident,
                transmission=t_sample,
                thickness_mm=thickness,
            )
        )
        # the empty cell's scattering, written per sample thickness: what the cell adds to dΣ/dΩ
        c = rng.poisson(
            counts_for(saxs_geometry, cell, incident=incident, transmission=t_cell, thickness_mm=thickness)
        )
        curves[incident] = reduce_exposure(
            Exposure(s, 1.0, incident, t_sample),
            saxs_geometry,
            thickness_mm=thickness,
            empty_cell=Exposure(c, 1.0, incident, t_cell),
        )
    curve = curves[4e11]
    expected = phase_intensity("sphere", curve.q_inv_a)
    low = curve.q_inv_a < 0.05
    assert np.sum(curve.intensity_per_cm[low]) / np.sum(expected[low]) == pytest.approx(1.0, abs=0.01)
    # four times the counts: half the relative uncertainty
    rel = [np.median(c.sigma_per_cm[low] / np.abs(c.intensity_per_cm[low])) for c in curves.values()]
    assert rel[1] / rel[0] == pytest.approx(0.5, rel=0.05)


def test_solvent_subtraction(saxs_geometry: DetectorGeometry) -> None:
    integ = integrator_for(saxs_geometry)
    frame = np.full(saxs_geometry.shape, 100.0)
    solvent = reduce_exposure(Exposure(frame, 1.0, 1e10, 0.5), saxs_geometry, thickness_mm=1.0)
    sample = reduce_exposure(Exposure(2 * frame, 1.0, 1e10, 0.5), saxs_geometry, thickness_mm=1.0)
    solute = subtract_solvent(sample, solvent, 0.9)
    np.testing.assert_allclose(solute.intensity_per_cm, 1.1 * solvent.intensity_per_cm)
    assert len(solute) == integ.n_bins
    with pytest.raises(AnalysisError):
        subtract_solvent(sample, solvent, 1.5)


def _frame(geometry: DetectorGeometry, value: float = 50.0) -> np.ndarray:
    return np.full(geometry.shape, value)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"counts": "zeros"}, FailureCode.EMPTY_FRAME),
        ({"counts": "empty"}, FailureCode.MISSING_DATA),
        ({"counts": "wrong_shape"}, FailureCode.BAD_FRAME),
        ({"counts": "nan"}, FailureCode.BAD_FRAME),
        ({"counts": "negative"}, FailureCode.BAD_FRAME),
        ({"transmission": 0.0}, FailureCode.BAD_TRANSMISSION),
        ({"transmission": -0.1}, FailureCode.BAD_TRANSMISSION),
        ({"transmission": 1.2}, FailureCode.BAD_TRANSMISSION),
        ({"transmission": float("nan")}, FailureCode.BAD_TRANSMISSION),
        ({"incident_counts": 0.0}, FailureCode.BAD_NORMALISATION),
        ({"exposure_s": -1.0}, FailureCode.BAD_NORMALISATION),
        ({"saturation_counts": 50.0}, FailureCode.SATURATED_FRAME),
    ],
)
def test_bad_frames_fail_with_a_reason(
    small_geometry: DetectorGeometry, change: dict[str, object], code: FailureCode
) -> None:
    kwargs: dict[str, object] = {"exposure_s": 1.0, "incident_counts": 1e9, "transmission": 0.8}
    frame = _frame(small_geometry)
    kind = change.pop("counts", None)
    if kind == "zeros":
        frame = np.zeros(small_geometry.shape)
    elif kind == "empty":
        frame = np.zeros((0, 0))
    elif kind == "wrong_shape":
        frame = np.ones((64, 64))
    elif kind == "nan":
        frame[70, 90] = np.nan
    elif kind == "negative":
        frame[70, 90] = -3
    kwargs.update(change)
    with pytest.raises(AnalysisError) as info:
        reduce_exposure(Exposure(frame, **kwargs), small_geometry, thickness_mm=1.0)  # type: ignore[arg-type]
    assert info.value.code is code
    assert str(info.value)


def test_a_few_saturated_pixels_are_left_out(small_geometry: DetectorGeometry) -> None:
    frame = _frame(small_geometry)
    clean = reduce_exposure(
        Exposure(frame, 1.0, 1e9, 0.8, saturation_counts=1000), small_geometry, thickness_mm=1
    )
    frame[100, 100] = 1000  # one hot pixel out of ~16000: masked, the rest of the curve unaffected
    hot = reduce_exposure(
        Exposure(frame, 1.0, 1e9, 0.8, saturation_counts=1000), small_geometry, thickness_mm=1
    )
    np.testing.assert_allclose(hot.intensity_per_cm, clean.intensity_per_cm, rtol=1e-5)
    unmasked = reduce_exposure(Exposure(frame, 1.0, 1e9, 0.8), small_geometry, thickness_mm=1)
    assert np.max(np.abs(unmasked.intensity_per_cm / clean.intensity_per_cm - 1)) > 0.01


def test_missing_geometry_is_a_typed_failure(small_geometry: DetectorGeometry) -> None:
    for bad in (None, {}, {"n_pixels_x": 10}, {**small_geometry.to_dict(), "distance_mm": -5}):
        with pytest.raises(AnalysisError) as info:
            geometry_from_metadata(bad)
        assert info.value.code is FailureCode.MISSING_GEOMETRY
    assert geometry_from_metadata(small_geometry.to_dict()) == small_geometry


def test_bad_thickness(small_geometry: DetectorGeometry) -> None:
    with pytest.raises(AnalysisError, match="thickness"):
        reduce_exposure(Exposure(_frame(small_geometry), 1.0, 1e9, 0.8), small_geometry, thickness_mm=0)
