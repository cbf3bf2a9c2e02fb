"""The twin's instruments take any components: attenuation and flat scattering from formulas and densities."""

from __future__ import annotations

import numpy as np
import pytest

from tandem.components import Component, Components, Role
from tandem.errors import InvalidCompositionError
from tandem.sim.detector_image import simulate_frame, structure_only
from tandem.sim.instruments import SANS_INSTRUMENT, SAXS_INSTRUMENT, InstrumentError
from tandem.sim.scattering import instrument_intensity
from tandem.sim.system_phases import D2O, H2O
from tandem.sim.systems import default_system
from tandem.sim.truth import TruthPoint
from tandem.stations import Probe

C12E5 = Component("C12E5", "C22H46O6", 0.97, Role.LIQUID)
DECANE = Component("decane", "C10H22", 0.73, Role.LIQUID)
#: the same oil with its hydrogen swapped for deuterium
DECANE_D = Component("decane-d22", "C10D22", 0.83, Role.LIQUID)
COMPONENTS = Components([H2O, D2O, C12E5, DECANE, DECANE_D])


def test_the_sans_incoherent_background_rises_with_the_hydrogen_in_the_sample() -> None:
    sans = SANS_INSTRUMENT.for_campaign(COMPONENTS, D2O)
    levels = [sans.incoherent_per_cm({"C12E5": w}) for w in (0.0, 0.02, 0.05, 0.10)]
    assert np.all(np.diff(levels) > 0)
    # about 0.45 /cm/sr per unit volume fraction of hydrogenous surfactant over D2O's ~0.01
    assert levels[0] == pytest.approx(0.011, rel=0.05)
    assert levels[-1] - levels[0] == pytest.approx(0.1 * 0.97 * 1.1 * (0.448 - 0.011), rel=0.1)
    # the same oil deuterated adds almost nothing over D2O; light water as the solvent is ~40x heavy water
    added_by_d = sans.incoherent_per_cm({"decane-d22": 0.05}) - levels[0]
    added_by_h = sans.incoherent_per_cm({"decane": 0.05}) - levels[0]
    assert abs(added_by_d) < added_by_h / 10
    light = SANS_INSTRUMENT.for_campaign(COMPONENTS, H2O)
    assert light.solvent_flat_per_cm > 30 * sans.solvent_flat_per_cm


def test_the_frame_carries_the_flat_of_the_composition_once() -> None:
    """The truth's `background` (the default system's solute incoherent) is not added on top."""
    composition = {"SDS": 0.05, "PPG": 0.03, "NaCl": 0.0}
    truth = default_system(composition, Probe.NEUTRON)
    sans = SANS_INSTRUMENT
    frame = simulate_frame(sans, None, composition, truth, 60.0, np.random.default_rng(0))
    structure = instrument_intensity(structure_only(truth), frame.q_inv_a, sans, sans.configuration())
    assert frame.true_intensity_per_cm == pytest.approx(structure + sans.flat_per_cm(composition))
    # what the instrument adds for the solutes is exactly what the default system states for them
    phi_solvent = sans.volume_fractions(composition)["D2O"]
    solutes = sans.flat_per_cm(composition) - phi_solvent * sans.solvent_flat_per_cm
    assert solutes == pytest.approx(truth.parameters["background"], rel=1e-6)


def test_x_rays_keep_the_compressibility_flat_of_water() -> None:
    assert SAXS_INSTRUMENT.solvent_flat_per_cm == pytest.approx(0.0165)
    composition = {"SDS": 0.1}
    phi = SAXS_INSTRUMENT.volume_fractions(composition)["H2O"]
    assert SAXS_INSTRUMENT.flat_per_cm(composition) == pytest.approx(phi * 0.0165)
    assert SAXS_INSTRUMENT.incoherent_per_cm(composition) == 0.0


def test_a_campaign_instrument_attenuates_by_its_own_components() -> None:
    saxs = SAXS_INSTRUMENT.for_campaign(COMPONENTS, H2O)
    # hydrocarbon absorbs X-rays less than the water it replaces
    assert saxs.sample_transmission({"decane": 0.05}) > saxs.sample_transmission({})
    point = TruthPoint("micelles", "sphere", {"scale": 0.01, "radius": 30.0, "sld": 8.0, "sld_solvent": 9.4})
    frame = simulate_frame(saxs, None, {"C12E5": 0.03, "decane": 0.01}, point, 1.0, np.random.default_rng(1))
    assert frame.counts.sum() > 0
    with pytest.raises(InvalidCompositionError, match=r"unknown solute 'SDS'; known: D2O, C12E5, decane"):
        saxs.sample_transmission({"SDS": 0.01})


def test_a_campaign_instrument_refuses_a_solvent_it_does_not_know() -> None:
    with pytest.raises(InstrumentError, match="not one of the components"):
        SANS_INSTRUMENT.for_campaign(Components([H2O, C12E5]), D2O)
    with pytest.raises(InstrumentError, match="is a solute"):
        SANS_INSTRUMENT.for_campaign(
            Components([D2O, Component("salt", "NaCl", 2.165, Role.SOLUTE)]),
            Component("salt", "NaCl", 2.165, Role.SOLUTE),
        )
