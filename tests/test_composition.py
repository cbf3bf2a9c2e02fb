"""The composition vocabulary, checked against amounts worked out by hand."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tandem import Amount, Basis, Component, Components, Composition, Role
from tandem.errors import InvalidComponentError, InvalidCompositionError, UnknownComponentError

WATER = Component("water", "H2O", 0.997)
HEAVY_WATER = Component("d2o", "D2O", 1.107)
ETHANOL = Component("ethanol", "C2H5OH", 0.789)
SALT = Component("nacl", "NaCl", 2.165, Role.SOLUTE)
SDS = Component("sds", "C12H25NaO4S", 1.01, Role.SOLUTE)


def test_component_molar_mass_and_slds() -> None:
    assert WATER.molar_mass_g_per_mol == pytest.approx(18.015, abs=1e-3)
    assert SALT.molar_mass_g_per_mol == pytest.approx(58.44, abs=1e-2)
    # textbook values: H2O X-ray ~9.4, neutron -0.56; D2O neutron ~6.36 (1e-6/Å²)
    assert WATER.xray_sld(12.0) == pytest.approx(9.4, abs=0.1)
    assert WATER.neutron_sld() == pytest.approx(-0.56, abs=0.01)
    assert HEAVY_WATER.neutron_sld() == pytest.approx(6.36, abs=0.05)
    # electron densities of H2O and D2O are the same per molecule: X-rays barely tell them apart
    assert HEAVY_WATER.xray_sld(12.0) / WATER.xray_sld(12.0) == pytest.approx(
        1.107 / 0.997 * 18.015 / 20.03, rel=0.01
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "x", "formula": "H2O", "density_g_per_ml": -1.0}, "density"),
        ({"name": "x", "formula": "H2O", "density_g_per_ml": math.nan}, "density"),
        ({"name": "x", "formula": "Xq9", "density_g_per_ml": 1.0}, "formula"),
        ({"name": "", "formula": "H2O", "density_g_per_ml": 1.0}, "name"),
        ({"name": "x", "formula": "H2O", "density_g_per_ml": 1.0, "role": "gas"}, "role"),
    ],
)
def test_bad_components_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidComponentError, match=message):
        Component(**kwargs)  # type: ignore[arg-type]


def test_salt_molarity_across_two_liquids_by_hand() -> None:
    """0.1 mol/L NaCl in 70:30 (v/v) H2O:D2O, 1 mL made."""
    comp = Composition.from_amounts(
        [WATER, HEAVY_WATER, SALT],
        {
            "water": Amount(0.7, Basis.VOLUME_FRACTION),
            "nacl": Amount(0.1, Basis.MOLARITY_MOL_PER_L),
        },
        balance="d2o",
        total_volume_ul=1000.0,
    )
    m_water, m_d2o, m_salt = 700 * 0.997, 300 * 1.107, 0.1 * 1e-3 * SALT.molar_mass_g_per_mol * 1000
    total = m_water + m_d2o + m_salt
    assert comp.total_mass_mg == pytest.approx(total)
    assert comp.total_volume_ul == pytest.approx(1000.0)
    assert comp.mass_fraction("water") == pytest.approx(m_water / total)
    assert comp.mass_fraction("d2o") == pytest.approx(m_d2o / total)
    assert comp.mass_fraction("nacl") == pytest.approx(m_salt / total)
    assert comp.volume_fractions == pytest.approx({"water": 0.7, "d2o": 0.3})
    assert comp.molarities_mol_per_l["nacl"] == pytest.approx(0.1)
    assert comp.concentrations_mg_per_ml["nacl"] == pytest.approx(m_salt)  # in 1 mL
    assert comp.density_g_per_ml == pytest.approx(total / 1000.0)


def test_concentration_basis_by_hand() -> None:
    """20 mg/mL SDS in water: per mL of solution, 20 mg SDS and 0.997 g water."""
    comp = Composition.from_amounts(
        [WATER, SDS], {"sds": Amount(20.0, Basis.CONCENTRATION_MG_PER_ML)}, balance="water"
    )
    assert comp.mass_fraction("sds") == pytest.approx(20.0 / (20.0 + 997.0))
    assert comp.concentrations_mg_per_ml["sds"] == pytest.approx(20.0)
    assert comp.total_mass_mg is None


def test_mass_fractions_round_trip_through_every_basis() -> None:
    comp = Composition.from_mass_fractions(
        [WATER, ETHANOL, SALT], {"ethanol": 0.2, "nacl": 0.05}, balance="water", total_mass_mg=500
    )
    vf = comp.volume_fractions
    back = Composition.from_amounts(
        comp.components,
        {
            "ethanol": Amount(vf["ethanol"], Basis.VOLUME_FRACTION),
            "nacl": Amount(comp.molarities_mol_per_l["nacl"], Basis.MOLARITY_MOL_PER_L),
        },
        balance="water",
        total_volume_ul=comp.total_volume_ul,
    )
    assert back.max_abs_difference(comp) < 1e-12
    assert back.total_mass_mg == pytest.approx(500)
    assert Composition.from_dict(comp.to_dict(), comp.components).max_abs_difference(comp) < 1e-15


@pytest.mark.parametrize(
    ("amounts", "balance", "error", "message"),
    [
        (
            {"nacl": Amount(0.05), "ethanol": Amount(0.1)},
            None,
            InvalidCompositionError,
            "no amount given for 'water'",
        ),
        ({"salt": Amount(0.1), "ethanol": Amount(0.1)}, "water", UnknownComponentError, "known components"),
        (
            {"nacl": Amount(0.1, Basis.VOLUME_FRACTION), "ethanol": Amount(0.1)},
            "water",
            InvalidCompositionError,
            "solute",
        ),
        ({"nacl": Amount(0.5), "ethanol": Amount(0.7)}, "water", InvalidCompositionError, "negative"),
        (
            {"nacl": Amount(0.1), "ethanol": Amount(0.1), "water": Amount(0.5)},
            None,
            InvalidCompositionError,
            "inconsistent",
        ),
        ({"nacl": Amount(0.1), "ethanol": Amount(0.1)}, "nacl", InvalidCompositionError, "balance"),
    ],
)
def test_bad_amounts_are_refused(
    amounts: dict[str, Amount], balance: str | None, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        Composition.from_amounts([WATER, ETHANOL, SALT], amounts, balance=balance)


@pytest.mark.parametrize("value", [-0.1, math.nan, math.inf, 1.5])
def test_bad_fraction_values_are_refused(value: float) -> None:
    with pytest.raises(InvalidCompositionError):
        Amount(value, Basis.MASS_FRACTION)


def test_a_mixture_needs_a_liquid() -> None:
    with pytest.raises(InvalidCompositionError, match="liquid"):
        Composition.from_mass_fractions([SALT], {"nacl": 1.0})


def test_components_are_looked_up_by_name() -> None:
    comps = Components([WATER, SALT])
    assert comps.liquids == (WATER,)
    assert comps.solutes == (SALT,)
    with pytest.raises(UnknownComponentError, match="nacl, water"):
        comps["sugar"]
    with pytest.raises(InvalidComponentError, match="twice"):
        Components([WATER, WATER])


@given(
    ethanol=st.floats(0.0, 0.9),
    salt=st.floats(0.0, 0.09),
    volume=st.floats(1.0, 5000.0),
)
def test_conversions_are_consistent(ethanol: float, salt: float, volume: float) -> None:
    comp = Composition.from_mass_fractions(
        [WATER, ETHANOL, SALT], {"ethanol": ethanol, "nacl": salt}, balance="water", total_volume_ul=volume
    )
    assert math.fsum(comp.mass_fractions.values()) == pytest.approx(1.0)
    assert math.fsum(comp.volume_fractions.values()) == pytest.approx(1.0)
    assert comp.total_volume_ul == pytest.approx(volume)
    # mass = Σ concentration × volume
    conc = comp.concentrations_mg_per_ml
    assert math.fsum(conc.values()) * volume / 1000 == pytest.approx(comp.total_mass_mg)
