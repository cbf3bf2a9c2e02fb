"""Detector frames: geometry, absolute scale, backgrounds, counting statistics, saturation, bad input."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tandem.errors import InvalidCompositionError
from tandem.sim.detector_image import (
    FrameKind,
    SimulatedFrame,
    pixel_map,
    simulate_empty_cell_frame,
    simulate_frame,
    simulate_solvent_frame,
)
from tandem.sim.instruments import (
    SANS_INSTRUMENT,
    SAXS_INSTRUMENT,
    Instrument,
    ScanLimitError,
    UnknownConfigurationError,
)
from tandem.sim.systems import default_system
from tandem.sim.truth import load_truth
from tandem.stations import Probe

MICELLES = {"SDS": 0.05, "PPG": 0.0, "NaCl": 0.0}
BELOW_CLOUD = {"SDS": 0.002, "PPG": 0.052, "NaCl": 0.005}
ABOVE_CLOUD = {"SDS": 0.002, "PPG": 0.064, "NaCl": 0.005}


def _frame(
    instrument: Instrument, composition: dict[str, float], exposure_s: float, seed: int = 0
) -> SimulatedFrame:
    truth = default_system(composition, instrument.probe)
    return simulate_frame(instrument, None, composition, truth, exposure_s, np.random.default_rng(seed))


def _ring(frame: SimulatedFrame, q_lo: float, q_hi: float) -> np.ndarray:
    q = pixel_map(frame.geometry).q_inv_a
    return (q >= q_lo) & (q < q_hi)


def _reduce(
    frame: SimulatedFrame, empty: SimulatedFrame, instrument: Instrument, q_lo: float, q_hi: float
) -> float:
    """The textbook reduction of one ring to dΣ/dΩ (1/cm): the test's own, independent of analysis/."""
    pixels = pixel_map(frame.geometry)
    ring = _ring(frame, q_lo, q_hi)
    omega = pixels.solid_angle_sr[ring].sum()
    efficiency = instrument.detector.efficiency

    def per_sr(f: SimulatedFrame) -> float:
        return float(f.counts[ring].sum()) / (f.monitor_counts * efficiency * f.transmission * omega)

    return (per_sr(frame) - per_sr(empty)) / (frame.path_length_mm / 10.0)


def test_frames_have_the_geometry_shape_and_an_empty_beam_stop_shadow() -> None:
    for instrument, exposure in ((SAXS_INSTRUMENT, 1.0), (SANS_INSTRUMENT, 300.0)):
        frame = _frame(instrument, MICELLES, exposure)
        assert frame.counts.shape == frame.geometry.shape
        assert frame.counts.dtype == np.uint32
        assert frame.kind is FrameKind.SAMPLE
        shadow = pixel_map(frame.geometry).behind_beamstop
        assert shadow.any()
        assert frame.counts[shadow].mean() < 1e-3 * frame.counts[~shadow].mean()
        assert 0 < frame.transmission < 1
        assert frame.monitor_counts == pytest.approx(
            instrument.configuration().flux_per_s * exposure, rel=1e-3
        )


def test_a_frame_reduces_to_the_true_absolute_intensity() -> None:
    instrument = SANS_INSTRUMENT
    frame = _frame(instrument, MICELLES, 1800.0)
    empty = simulate_empty_cell_frame(instrument, None, 1800.0, np.random.default_rng(1))
    for q_lo, q_hi in ((0.02, 0.025), (0.05, 0.06), (0.09, 0.1)):
        measured = _reduce(frame, empty, instrument, q_lo, q_hi)
        truth = np.interp(math.sqrt(q_lo * q_hi), frame.q_inv_a, frame.true_intensity_per_cm)
        assert measured == pytest.approx(truth, rel=0.05)


def test_empty_cell_solvent_and_sample_frames_rank_as_physics_says() -> None:
    rng = np.random.default_rng(2)
    for instrument, exposure in ((SAXS_INSTRUMENT, 1.0), (SANS_INSTRUMENT, 600.0)):
        empty = simulate_empty_cell_frame(instrument, None, exposure, rng)
        solvent = simulate_solvent_frame(instrument, None, exposure, rng)
        sample = _frame(instrument, MICELLES, exposure)
        assert empty.kind is FrameKind.EMPTY_CELL
        assert solvent.kind is FrameKind.SOLVENT
        assert empty.counts.sum() < solvent.counts.sum() < sample.counts.sum()
        assert sample.true_transmission < empty.true_transmission
        assert empty.true_transmission == pytest.approx(instrument.cell.transmission)


@pytest.mark.parametrize(("instrument", "exposure_s"), [(SAXS_INSTRUMENT, 0.1), (SANS_INSTRUMENT, 30.0)])
def test_relative_noise_halves_when_the_exposure_quadruples(
    instrument: Instrument, exposure_s: float
) -> None:
    composition = {"SDS": 0.03, "PPG": 0.0, "NaCl": 0.0}
    truth = default_system(composition, instrument.probe)
    rng = np.random.default_rng(3)

    def relative_noise(t: float) -> float:
        frames = np.stack(
            [
                simulate_frame(instrument, None, composition, truth, t, rng).counts.astype(np.float64)
                for _ in range(12)
            ]
        )
        geometry = instrument.configuration().geometry
        q = pixel_map(geometry).q_inv_a
        ring = (q > 0.05) & (q < 0.06)
        pixels = frames[:, ring]
        # spread over repeated frames, pixel by pixel, relative to the mean
        return float(np.mean(pixels.std(axis=0, ddof=1) / pixels.mean(axis=0)))

    ratio = relative_noise(exposure_s) / relative_noise(4 * exposure_s)
    assert ratio == pytest.approx(2.0, rel=0.1)


def test_neutron_only_boundary_shows_in_sans_frames_and_not_in_saxs_frames() -> None:
    def ring_counts(instrument: Instrument, composition: dict[str, float], exposure: float) -> float:
        frame = _frame(instrument, composition, exposure)
        return float(frame.counts[_ring(frame, 0.01, 0.03)].sum()) / frame.transmission

    saxs = ring_counts(SAXS_INSTRUMENT, ABOVE_CLOUD, 10.0) / ring_counts(SAXS_INSTRUMENT, BELOW_CLOUD, 10.0)
    sans = ring_counts(SANS_INSTRUMENT, ABOVE_CLOUD, 600.0) / ring_counts(SANS_INSTRUMENT, BELOW_CLOUD, 600.0)
    assert abs(saxs - 1) < 0.01
    assert sans > 5


def test_saturation_is_reported() -> None:
    lamellar = {"SDS": 0.145, "PPG": 0.0, "NaCl": 0.0}
    truth = default_system(lamellar, Probe.XRAY)
    rng = np.random.default_rng(4)
    short = simulate_frame(SAXS_INSTRUMENT, "long", lamellar, truth, 1.0, rng)
    long = simulate_frame(SAXS_INSTRUMENT, "long", lamellar, truth, 600.0, rng)
    assert not short.saturated
    assert long.saturated
    assert long.counts.max() == SAXS_INSTRUMENT.detector.max_counts


def test_a_custom_truth_drives_the_frames(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "frame_truth.py").write_text(
        textwrap.dedent(
            """
            from tandem.sim.truth import TruthPoint

            def big_spheres(composition, probe):
                return TruthPoint("big", "sphere", {"radius": 300.0, "scale": 0.01,
                                  "sld": 1.0, "sld_solvent": 6.35})
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    truth = load_truth("frame_truth:big_spheres")
    point = truth(MICELLES, Probe.NEUTRON)
    custom = simulate_frame(SANS_INSTRUMENT, "long", MICELLES, point, 600.0, np.random.default_rng(5))
    default = _frame(SANS_INSTRUMENT, MICELLES, 600.0)
    assert custom.configuration == "long"
    # 300 Å spheres: a Guinier knee and form-factor fringes at q ~ 0.015, absent from micelles
    assert custom.true_intensity_per_cm[0] > 100 * default.true_intensity_per_cm[0]


def test_bad_scan_parameters_are_refused() -> None:
    truth = default_system(MICELLES, Probe.XRAY)
    rng = np.random.default_rng(6)
    with pytest.raises(ScanLimitError, match="exposure"):
        simulate_frame(SAXS_INSTRUMENT, None, MICELLES, truth, -1.0, rng)
    with pytest.raises(ScanLimitError, match="exposure"):
        simulate_frame(SANS_INSTRUMENT, None, MICELLES, truth, 1e6, rng)
    with pytest.raises(UnknownConfigurationError, match="known: short, middle, long"):
        simulate_frame(SANS_INSTRUMENT, "far", MICELLES, truth, 10.0, rng)
    with pytest.raises(ScanLimitError, match="temperature"):
        simulate_frame(SAXS_INSTRUMENT, None, MICELLES, truth, 1.0, rng, temperature_c=150.0)
    with pytest.raises(InvalidCompositionError, match="unknown solute"):
        simulate_frame(SAXS_INSTRUMENT, None, {"glycerol": 0.1}, truth, 1.0, rng)
    with pytest.raises(InvalidCompositionError, match="room for the solvent"):
        simulate_frame(SAXS_INSTRUMENT, None, {"SDS": 0.7, "PPG": 0.5}, truth, 1.0, rng)
    with pytest.raises(ScanLimitError):
        simulate_empty_cell_frame(SAXS_INSTRUMENT, None, float("nan"), rng)
