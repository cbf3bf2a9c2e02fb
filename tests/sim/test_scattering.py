"""Absolute I(q) with resolution; the same sample at SAXS and SANS; the neutron-only boundary."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tandem.sim.instruments import (
    SANS_INSTRUMENT,
    SAXS_INSTRUMENT,
    Instrument,
    InstrumentError,
    UnknownConfigurationError,
    instrument_for,
)
from tandem.sim.scattering import ScatteringError, instrument_intensity, intensity
from tandem.sim.system_phases import NEUTRON_ONLY_BOUNDARY
from tandem.sim.systems import default_system, phase_of
from tandem.sim.truth import TruthError, TruthPoint
from tandem.stations import SANS, SAXS, Probe

BELOW_CLOUD = {"SDS": 0.002, "PPG": 0.052, "NaCl": 0.005}
ABOVE_CLOUD = {"SDS": 0.002, "PPG": 0.064, "NaCl": 0.005}


def _q_of(instrument: Instrument, configuration: str | None = None, n: int = 120) -> np.ndarray:
    geometry = instrument.configuration(configuration).geometry
    return np.geomspace(geometry.q_min_inv_a, geometry.q_max_inv_a, n)


def _measured_total(instrument: Instrument, composition: dict[str, float], q: np.ndarray) -> np.ndarray:
    """What the station sees of the sample: structure plus the solvent's own flat scattering."""
    point = default_system(composition, instrument.probe)
    return instrument_intensity(point, q, instrument) + instrument.solvent_flat_per_cm


def test_dilute_spheres_have_the_absolute_forward_scattering_of_their_contrast() -> None:
    point = TruthPoint("spheres", "sphere", {"radius": 50.0, "scale": 0.01, "sld": 1.0, "sld_solvent": 6.0})
    volume = 4 / 3 * math.pi * 50.0**3
    expected_i0 = 0.01 * (6.0 - 1.0) ** 2 * volume * 1e-4  # φ Δρ² V in 1/cm
    assert intensity(point, np.array([1e-4]))[0] == pytest.approx(expected_i0, rel=1e-3)


def test_same_composition_gives_physically_different_saxs_and_sans_curves() -> None:
    composition = {"SDS": 0.05, "PPG": 0.0, "NaCl": 0.0}
    q = np.geomspace(0.01, 0.3, 80)
    saxs = instrument_intensity(default_system(composition, Probe.XRAY), q, SAXS_INSTRUMENT)
    sans = instrument_intensity(default_system(composition, Probe.NEUTRON), q, SANS_INSTRUMENT)
    # contrast: protonated tails in D2O scatter neutrons far more than the core-shell cancels for X-rays
    assert sans[0] / saxs[0] > 10
    # shape: the X-ray core-shell profile gives a minimum and a second maximum; the neutron curve decays
    x_min = int(np.argmin(saxs))
    assert 0 < x_min < q.size - 1
    assert saxs[x_min:].max() > 1.5 * saxs[x_min]
    assert np.all(np.diff(sans[q < 0.15]) < 0)
    # q-range and resolution
    assert (
        SAXS_INSTRUMENT.configuration().geometry.q_max_inv_a
        > SANS_INSTRUMENT.configuration().geometry.q_max_inv_a
    )
    dq_saxs = SAXS_INSTRUMENT.q_resolution("short", q) / q
    dq_sans = SANS_INSTRUMENT.q_resolution("middle", q) / q
    assert np.all(dq_sans > 3 * dq_saxs)
    assert dq_sans[-1] == pytest.approx(0.10 / 2.3548, rel=0.1)  # Δλ/λ dominates at high q


def test_neutron_only_boundary_changes_sans_and_barely_changes_saxs() -> None:
    assert (phase_of(BELOW_CLOUD), phase_of(ABOVE_CLOUD)) == NEUTRON_ONLY_BOUNDARY
    q_x = _q_of(SAXS_INSTRUMENT)
    x_ratio = _measured_total(SAXS_INSTRUMENT, ABOVE_CLOUD, q_x) / _measured_total(
        SAXS_INSTRUMENT, BELOW_CLOUD, q_x
    )
    q_n = _q_of(SANS_INSTRUMENT)
    n_ratio = _measured_total(SANS_INSTRUMENT, ABOVE_CLOUD, q_n) / _measured_total(
        SANS_INSTRUMENT, BELOW_CLOUD, q_n
    )
    # X-rays: within 10 % everywhere on the detector (and the difference is at the very lowest q only)
    assert np.max(np.abs(x_ratio - 1)) < 0.10
    assert np.median(np.abs(x_ratio - 1)) < 0.001
    # neutrons: a hundredfold at low q
    assert np.max(n_ratio) > 100


def test_a_boundary_both_probes_see() -> None:
    spheres = {"SDS": 0.05, "PPG": 0.0, "NaCl": 0.01}
    rods = {"SDS": 0.05, "PPG": 0.0, "NaCl": 0.025}
    assert (phase_of(spheres), phase_of(rods)) == ("spherical_micelles", "elongated_micelles")
    for instrument in (SAXS_INSTRUMENT, SANS_INSTRUMENT):
        q = _q_of(instrument)
        ratio = _measured_total(instrument, rods, q) / _measured_total(instrument, spheres, q)
        assert np.max(ratio) > 3


def test_resolution_broadens_the_lamellar_bragg_peak() -> None:
    point = default_system({"SDS": 0.145, "PPG": 0.0, "NaCl": 0.0}, Probe.NEUTRON)
    d = point.parameters["d_spacing"]
    q = np.linspace(0.5, 1.5, 201) * 2 * math.pi / d
    sharp = intensity(point, q)
    smeared = instrument_intensity(point, q, SANS_INSTRUMENT, "long")
    assert q[np.argmax(sharp)] == pytest.approx(2 * math.pi / d, rel=0.03)
    assert smeared.max() < 0.9 * sharp.max()
    # smearing conserves the integrated peak to within the tails that leave the window
    assert np.trapezoid(smeared, q) == pytest.approx(np.trapezoid(sharp, q), rel=0.15)


def test_repeated_calls_give_identical_results() -> None:
    point = default_system({"SDS": 0.03, "PPG": 0.0, "NaCl": 0.04}, Probe.XRAY)
    q = _q_of(SAXS_INSTRUMENT, n=50)
    np.testing.assert_array_equal(
        instrument_intensity(point, q, SAXS_INSTRUMENT), instrument_intensity(point, q, SAXS_INSTRUMENT)
    )


def test_transmission_follows_composition_and_probe() -> None:
    water_x = SAXS_INSTRUMENT.sample_transmission({})
    # 1.5 mm of water at 12 keV (photoabsorption): about 0.66
    assert water_x == pytest.approx(0.66, abs=0.03)
    assert SAXS_INSTRUMENT.sample_transmission({"NaCl": 0.05}) < water_x
    d2o = SANS_INSTRUMENT.sample_transmission({})
    assert 0.8 < d2o < 0.95
    # hydrogen's incoherent scattering makes protonated solutes cost neutron transmission
    assert SANS_INSTRUMENT.sample_transmission({"PPG": 0.1}) < d2o - 0.05


@pytest.mark.parametrize(
    ("point", "error"),
    [
        (TruthPoint("x", "no_such_model", {}), ScatteringError),
        (TruthPoint("x", "sphere", {"radius": 10.0, "colour": 1.0}), ScatteringError),
        (TruthPoint("x", "sphere", {"radius": float("nan")}), ScatteringError),
    ],
)
def test_truth_points_sasmodels_cannot_evaluate_are_refused(
    point: TruthPoint, error: type[Exception]
) -> None:
    with pytest.raises(error) as info:
        intensity(point, np.array([0.01, 0.1]))
    assert isinstance(info.value, TruthError)


@pytest.mark.parametrize("q", [np.array([]), np.array([-0.1, 0.1]), np.array([[0.1]]), np.array([np.inf])])
def test_bad_q_is_refused(q: np.ndarray) -> None:
    with pytest.raises(ScatteringError, match="q must be"):
        intensity(TruthPoint("x", "sphere", {"radius": 10.0}), q)


def test_instruments_are_found_by_station_and_refuse_unknown_names() -> None:
    assert instrument_for(SAXS) is SAXS_INSTRUMENT
    assert instrument_for(SANS) is SANS_INSTRUMENT
    with pytest.raises(InstrumentError, match="no instrument model"):
        instrument_for("usaxs")
    with pytest.raises(UnknownConfigurationError, match="known: short, long"):
        SAXS_INSTRUMENT.configuration("medium")


def test_time_costs_have_the_magnitudes_of_real_stations() -> None:
    saxs, sans = SAXS_INSTRUMENT.time_costs, SANS_INSTRUMENT.time_costs
    assert sans.configuration_change_s > saxs.configuration_change_s
    assert sans.transmission_s > saxs.transmission_s
    assert SAXS_INSTRUMENT.exposure_cost_s(1.0) < 2.0
    assert SANS_INSTRUMENT.exposure_cost_s(600.0) > 600.0
    assert saxs.temperature_change_s(25.0, 25.0) == 0.0
    assert sans.temperature_change_s(25.0, 45.0) == pytest.approx(20 / 2.0 * 60 + 300)


@pytest.mark.parametrize("model", ["bcc_paracrystal", "fcc_paracrystal", "sc_paracrystal"])
def test_paracrystals_smeared_at_the_lowest_q_of_a_sans_line_are_finite(model: str) -> None:
    # sasmodels evaluates the model towards q = 0 for the resolution's tails, where these overflow
    q = np.geomspace(3e-4, 0.3, 120)
    point = TruthPoint("cubic", model, {"scale": 0.2, "radius": 40.0, "dnn": 220.0, "d_factor": 0.06})
    smeared = intensity(point, q, 0.25 * q + 1e-4)
    assert np.all(np.isfinite(smeared))
    assert np.all(smeared > 0)


def test_smearing_agrees_with_sasmodels_own_where_the_model_is_tame() -> None:
    from sasmodels.core import load_model
    from sasmodels.data import Data1D
    from sasmodels.direct_model import DirectModel

    q = np.geomspace(1e-3, 0.3, 100)
    dq = 0.1 * q + 2e-4
    point = TruthPoint("spheres", "sphere", {"scale": 0.01, "radius": 60.0, "sld": 1.0, "sld_solvent": 6.3})
    theirs = DirectModel(Data1D(x=q, dx=dq), load_model("sphere"))(**point.parameters)
    np.testing.assert_allclose(intensity(point, q, dq), theirs, rtol=1e-3)
