"""The second curve source: 1-D curves as another facility delivers them, not through our reduction."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytest

from tandem.analysis.integration import integrator_for
from tandem.errors import InvalidCompositionError, TandemError
from tandem.sim.curve_source import (
    DEFAULT_SETTINGS,
    CurveSourceError,
    CurveSourceSettings,
    ProbeGrid,
    simulate_curve,
    simulate_curves,
)
from tandem.sim.instruments import INSTRUMENTS
from tandem.sim.scattering import intensity
from tandem.sim.systems import default_system
from tandem.sim.truth import GroundTruth, TruthPoint
from tandem.stations import Probe

MICELLES = {"SDS": 0.05, "PPG": 0.0, "NaCl": 0.0}
POLYMER = {"SDS": 0.002, "PPG": 0.03, "NaCl": 0.0}


def _flat_truth(level_per_cm: float, background_per_cm: float = 0.0) -> GroundTruth:
    """A truth with no structure at all: I(q) is `level` (a tiny Guinier term keeps sasmodels busy)."""

    def truth(composition: Mapping[str, float], probe: Probe, /) -> TruthPoint:
        del composition, probe
        return TruthPoint(
            "flat",
            "guinier",
            {"scale": level_per_cm, "rg": 1e-3, "background": background_per_cm},
        )

    return truth


def test_each_probe_has_its_own_grid_and_neither_is_the_twins() -> None:
    rng = np.random.default_rng(0)
    xray = simulate_curve(default_system, MICELLES, Probe.XRAY, rng)
    neutron = simulate_curve(default_system, MICELLES, Probe.NEUTRON, rng)
    assert (len(xray), len(neutron)) == (150, 90)
    assert xray.q_inv_a[0] == pytest.approx(0.006)
    assert xray.q_inv_a[-1] == pytest.approx(0.45)
    assert neutron.q_inv_a[0] == pytest.approx(0.003)
    assert neutron.q_inv_a[-1] == pytest.approx(0.35)
    assert np.allclose(np.diff(np.log(xray.q_inv_a)), np.log(0.45 / 0.006) / 149)  # log-spaced
    for instrument in INSTRUMENTS.values():
        twin_q = integrator_for(instrument.configuration().geometry).q_inv_a
        for curve in (xray, neutron):
            assert len(curve) != twin_q.size or not np.allclose(curve.q_inv_a, twin_q)
            assert not np.isclose(curve.q_inv_a[0], twin_q[0], rtol=0.05)


def test_jittered_grids_differ_between_samples_but_keep_their_size() -> None:
    settings = CurveSourceSettings(q_jitter_rms=0.03)
    rng = np.random.default_rng(1)
    curves = simulate_curves(default_system, [MICELLES] * 3, "xray", rng, settings)
    assert {len(c) for c in curves} == {150}
    assert not np.allclose(curves[0].q_inv_a, curves[1].q_inv_a)
    assert all(0.005 < c.q_inv_a[0] < 0.0072 for c in curves)


def test_curve_has_no_resolution_and_says_where_it_came_from() -> None:
    curve = simulate_curve(default_system, MICELLES, "neutron", np.random.default_rng(2))
    assert np.all(curve.dq_inv_a == 0)
    assert curve.metadata["source"] == "curve_source"
    assert curve.metadata["resolution"] == "none"
    assert "phase" not in curve.metadata  # the analysis must find it itself
    # a curve without resolution is a curve like any other: it coarsens (and fits) unsmeared
    assert np.all(curve.coarsened(3).dq_inv_a >= 0)


@pytest.mark.parametrize(("probe", "flat_per_cm"), [(Probe.XRAY, 0.016), (Probe.NEUTRON, 0.08)])
def test_the_solvent_background_is_left_in_and_forms_the_high_q_plateau(
    probe: Probe, flat_per_cm: float
) -> None:
    point = default_system(POLYMER, probe)
    structureless = TruthPoint(point.phase, point.model, {**point.parameters, "background": 0.0})
    rng = np.random.default_rng(3)
    plateaus = []
    for _ in range(20):
        curve = simulate_curve(default_system, POLYMER, probe, rng)
        expected = curve.metadata["solvent_background_per_cm"] + curve.metadata["solute_background_per_cm"]
        tail_q = curve.q_inv_a[-15:]
        # what the curve holds beyond the structure at high q is the flat level, unsubtracted
        excess = curve.intensity_per_cm[-15:] / curve.metadata["scale_error"] - intensity(
            structureless, tail_q
        )
        assert np.mean(excess) == pytest.approx(expected, rel=0.1)
        assert expected > 0.5 * flat_per_cm
        plateaus.append(curve.metadata["solvent_background_per_cm"])
    assert np.mean(plateaus) == pytest.approx(flat_per_cm, rel=0.05)
    assert 0.01 < np.std(plateaus) / np.mean(plateaus) < 0.12  # varies "a little" per sample
    if probe is Probe.NEUTRON:
        assert point.parameters["background"] > 0  # the solutes' incoherent comes on top


def test_a_light_water_solvent_raises_the_neutron_background() -> None:
    def h2o_truth(composition: Mapping[str, float], probe: Probe, /) -> TruthPoint:
        point = default_system(composition, probe)
        return TruthPoint(point.phase, point.model, {**point.parameters, "sld_solvent": -0.56})

    heavy = simulate_curve(default_system, MICELLES, "neutron", np.random.default_rng(4))
    light = simulate_curve(h2o_truth, MICELLES, "neutron", np.random.default_rng(4))
    assert light.metadata["solvent_background_per_cm"] > 10 * heavy.metadata["solvent_background_per_cm"]


def test_scale_error_is_multiplicative_with_two_percent_rms() -> None:
    rng = np.random.default_rng(5)
    scales = np.array(
        [simulate_curve(default_system, MICELLES, "xray", rng).metadata["scale_error"] for _ in range(400)]
    )
    assert np.mean(scales) == pytest.approx(1.0, abs=0.004)
    assert np.std(scales) == pytest.approx(0.02, rel=0.15)
    # and it scales the whole curve: flat truth, no background variation, many counts
    settings = CurveSourceSettings(
        grids={p: ProbeGrid(0.01, 0.3, 50, 0.0, 1e9) for p in Probe}, background_variation_rms=0.0
    )
    curve = simulate_curve(_flat_truth(2.0), MICELLES, "xray", np.random.default_rng(6), settings)
    ratio = curve.intensity_per_cm / 2.0
    assert np.allclose(ratio, curve.metadata["scale_error"], rtol=1e-3)


def test_counts_are_poisson_and_sigma_is_their_square_root() -> None:
    factor = 500.0
    level = 0.4  # 200 expected counts per point
    grid = ProbeGrid(0.01, 0.3, 2000, solvent_background_per_cm=0.0, counts_per_unit_intensity=factor)
    settings = CurveSourceSettings(
        grids=dict.fromkeys(Probe, grid), scale_error_rms=0.0, background_variation_rms=0.0
    )
    curve = simulate_curve(_flat_truth(level), MICELLES, "xray", np.random.default_rng(7), settings)
    counts = curve.intensity_per_cm * factor
    assert np.allclose(counts, np.round(counts))  # whole counts
    assert np.mean(counts) == pytest.approx(200, rel=0.02)
    assert np.var(counts) == pytest.approx(200, rel=0.1)  # Poisson: variance = mean
    assert np.allclose(curve.sigma_per_cm, np.sqrt(counts) / factor)


def test_sigma_never_vanishes_where_no_count_arrived() -> None:
    grid = ProbeGrid(0.01, 0.3, 100, solvent_background_per_cm=0.0, counts_per_unit_intensity=1.0)
    settings = CurveSourceSettings(grids=dict.fromkeys(Probe, grid))
    curve = simulate_curve(_flat_truth(0.01), MICELLES, "xray", np.random.default_rng(8), settings)
    assert np.any(curve.intensity_per_cm == 0)
    assert np.all(curve.sigma_per_cm >= 1.0)  # sqrt(max(counts, 1)) / factor


def test_relative_errors_at_the_background_level_are_a_few_percent() -> None:
    for probe in Probe:
        curve = simulate_curve(default_system, POLYMER, probe, np.random.default_rng(9))
        relative = curve.sigma_per_cm[-10:] / curve.intensity_per_cm[-10:]
        assert 0.01 < np.median(relative) < 0.06


def test_one_seed_gives_one_curve() -> None:
    first = simulate_curve(default_system, MICELLES, "xray", np.random.default_rng(42))
    again = simulate_curve(default_system, MICELLES, "xray", np.random.default_rng(42))
    other = simulate_curve(default_system, MICELLES, "xray", np.random.default_rng(43))
    assert np.array_equal(first.intensity_per_cm, again.intensity_per_cm)
    assert first.metadata == again.metadata
    assert not np.array_equal(first.intensity_per_cm, other.intensity_per_cm)


@pytest.mark.parametrize("probe", list(Probe))
def test_default_system_gives_sensible_curves_for_both_probes(probe: Probe) -> None:
    rng = np.random.default_rng(10)
    compositions = [MICELLES, POLYMER, {"SDS": 0.2, "PPG": 0.0, "NaCl": 0.0}, {"SDS": 0.08, "NaCl": 0.04}]
    curves = simulate_curves(default_system, compositions, probe, rng)
    assert len(curves) == len(compositions)
    for composition, curve in zip(compositions, curves, strict=True):
        assert np.all(np.isfinite(curve.intensity_per_cm))
        assert np.all(curve.sigma_per_cm > 0)
        assert curve.metadata["probe"] == probe.value
        assert curve.metadata["composition"] == composition
        # micelles scatter far above their flat level at low q
        if composition is MICELLES:
            assert curve.intensity_per_cm[0] > 3 * curve.intensity_per_cm[-1]


def test_unknown_probe_is_refused_with_the_valid_ones() -> None:
    with pytest.raises(CurveSourceError, match="xray, neutron"):
        simulate_curve(default_system, MICELLES, "infrared", np.random.default_rng(0))


def test_a_composition_the_truth_rejects_raises_its_typed_error() -> None:
    with pytest.raises(InvalidCompositionError, match="known solutes"):
        simulate_curve(default_system, {"glycerol": 0.1}, "xray", np.random.default_rng(0))
    with pytest.raises(InvalidCompositionError) as info:
        simulate_curves(default_system, [MICELLES, {"SDS": 2.0}], "xray", np.random.default_rng(0))
    assert any("#1" in note for note in info.value.__notes__)


def test_bad_generator_and_bad_settings_are_typed_errors() -> None:
    with pytest.raises(CurveSourceError, match="Generator"):
        simulate_curve(default_system, MICELLES, "xray", 42)  # type: ignore[arg-type]
    with pytest.raises(CurveSourceError, match="q_min < q_max"):
        ProbeGrid(0.5, 0.1, 100, 0.01, 1e4)
    with pytest.raises(CurveSourceError, match="missing neutron"):
        CurveSourceSettings(grids={Probe.XRAY: DEFAULT_SETTINGS.grid(Probe.XRAY)})
    with pytest.raises(CurveSourceError, match="scale_error_rms"):
        CurveSourceSettings(scale_error_rms=-0.1)
    assert issubclass(CurveSourceError, TandemError)
