"""The deck and its inventory, and deck files: good decks load, bad ones say what is wrong."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
from fixtures_deck import (
    COMPONENTS,
    EXAMPLE_DECKS,
    P300,
    P1000,
    WATER,
    make_deck,
    solution,
    stock,
    water_stocks,
)

from tandem import Amount, Basis, Component, Components, Composition
from tandem.errors import TandemError
from tandem.robots.deck import Deck, DeckError, Pipette, Stock, TipRack, UnknownDeckItemError, Well
from tandem.robots.deck_file import DeckFileError, load_deck_file, parse_amount, parse_deck_data

# -- values -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("volume_ul", "expected"),
    [(20.0, 1), (200.0, 1), (201.0, 2), (399.9, 2), (1000.0, 5), (19.9, None), (0.0, None), (math.nan, None)],
)
def test_pipette_transfers_for(volume_ul: float, expected: int | None) -> None:
    assert P300.transfers_for(volume_ul) == expected


def test_a_pipette_with_a_gap_between_split_volumes() -> None:
    """90-100 µL per transfer: 150 µL is too much for one and too little for two."""
    narrow = Pipette("narrow", 90.0, 100.0, "t")
    assert narrow.transfers_for(150.0) is None
    assert narrow.transfers_for(190.0) == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_volume_ul": 300.0}, "must not exceed"),
        ({"min_volume_ul": -1.0}, "min_volume_ul"),
        ({"max_volume_ul": math.nan}, "max_volume_ul"),
        ({"tip_type": ""}, "tip_type"),
        ({"systematic_error": 2.0}, "systematic_error"),
        ({"random_error": -0.1}, "random_error"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_pipettes(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(DeckError, match=message):
        replace(P300, **kwargs)


def test_stock_available_volume_excludes_the_dead_volume() -> None:
    s = stock("water", Composition.pure(WATER), volume_ul=700.0, dead_volume_ul=500.0)
    assert s.available_ul == 200.0
    assert replace(s, volume_ul=300.0).available_ul == 0.0
    assert s.density_g_per_ml == pytest.approx(0.997)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"volume_ul": -5.0}, "volume_ul"),
        ({"volume_ul": math.nan}, "volume_ul"),
        ({"volume_ul": 25000.0}, "at most"),
        ({"dead_volume_ul": 20000.0}, "dead volume"),
        ({"capacity_ul": 0.0}, "capacity_ul"),
        ({"name": ""}, "name"),
        ({"composition": {"water": 1.0}}, "Composition"),
    ],
)
def test_bad_stocks(kwargs: dict[str, object], message: str) -> None:
    good = stock("water", Composition.pure(WATER))
    with pytest.raises(DeckError, match=message):
        replace(good, **kwargs)


def test_wells_refuse_over_filling_and_contents_without_a_size() -> None:
    well = Well("A1", 1000.0, 10.0)
    assert well.is_empty
    assert well.volume_ul == 0.0
    full = replace(well, contents=Composition.pure(WATER, total_volume_ul=1000.0))
    assert full.available_ul == pytest.approx(990.0)
    with pytest.raises(DeckError, match="over-fill"):
        replace(well, contents=Composition.pure(WATER, total_volume_ul=1000.5))
    with pytest.raises(DeckError, match="total"):
        replace(well, contents=Composition.pure(WATER))
    with pytest.raises(DeckError, match="dead volume"):
        Well("A1", 100.0, 100.0)


def test_tip_racks() -> None:
    rack = TipRack("10", "tip_300ul", 96, 90)
    assert rack.tips_left == 6
    with pytest.raises(DeckError, match="only 96"):
        TipRack("10", "tip_300ul", 96, 97)
    with pytest.raises(DeckError, match="whole number"):
        TipRack("10", "tip_300ul", -1)


def test_lookups_and_their_errors(water_deck: Deck) -> None:
    assert water_deck.stock("sds_100").composition.concentrations_mg_per_ml["sds"] == pytest.approx(100.0)
    assert water_deck.well("A3").capacity_ul == 2000.0
    assert water_deck.pipette("p1000") == P1000
    assert water_deck.tips_left("tip_300ul") == 96
    assert len(water_deck.empty_wells()) == 6
    for lookup, name in ((water_deck.stock, "nope"), (water_deck.well, "Z1"), (water_deck.pipette, "p5")):
        with pytest.raises(UnknownDeckItemError, match=name) as info:
            lookup(name)
        assert isinstance(info.value, TandemError)
        assert isinstance(info.value, ValueError)
    assert "sds_100" in str(UnknownDeckItemError("stock", "x", ["sds_100"]))


def test_functional_updates_leave_the_original_alone(water_deck: Deck) -> None:
    after = (
        water_deck.with_stock_volume("water", 1000.0)
        .with_well_contents("A1", Composition.pure(WATER, total_volume_ul=500.0))
        .with_tips_used("tip_300ul", 100 - 4 - 92)  # 4 tips
    )
    assert water_deck.stock("water").volume_ul == 15000.0
    assert water_deck.well("A1").is_empty
    assert water_deck.tips_left("tip_300ul") == 96
    assert after.stock("water").volume_ul == 1000.0
    assert after.well("A1").volume_ul == pytest.approx(500.0)
    assert after.tips_left("tip_300ul") == 92
    assert [w.slot for w in after.empty_wells()] == ["A2", "A3", "A4", "A5", "A6"]


def test_refused_updates(water_deck: Deck) -> None:
    with pytest.raises(DeckError, match="volume_ul"):
        water_deck.with_stock_volume("water", -1.0)
    with pytest.raises(DeckError, match="over-fill"):
        water_deck.with_well_contents("A1", Composition.pure(WATER, total_volume_ul=5000.0))
    with pytest.raises(DeckError, match="only 96"):
        water_deck.with_tips_used("tip_300ul", 97)
    with pytest.raises(UnknownDeckItemError):
        water_deck.with_stock_volume("nope", 1.0)


def test_tips_are_used_across_racks() -> None:
    deck = Deck(COMPONENTS, tip_racks=(TipRack("a", "t", 3), TipRack("b", "t", 3)), pipettes=())
    used = deck.with_tips_used("t", 4)
    assert [r.n_used for r in used.tip_racks] == [3, 1]
    assert used.tips_left("t") == 2


def test_deck_consistency_checks() -> None:
    water = stock("water", Composition.pure(WATER))
    with pytest.raises(DeckError, match="used twice"):
        make_deck([water, water])
    with pytest.raises(DeckError, match="slot"):
        make_deck([water], wells=[Well(water.slot, 100.0)])
    with pytest.raises(DeckError, match="differ"):
        make_deck([water], wells=[Well("water", 100.0)])
    with pytest.raises(DeckError, match="does not define"):
        Deck(Components([WATER]), (stock("sds", solution({"sds": 0.1}, "water")),))
    other_water = Component("water", "H2O", 1.0)
    with pytest.raises(DeckError, match="differently"):
        Deck(COMPONENTS, (stock("w", Composition.pure(other_water)),))
    with pytest.raises(DeckError, match="racks hold only"):
        Deck(COMPONENTS, (), (), (TipRack("r", "other", 96),), (P300,))


# -- deck files --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value", "basis"),
    [
        ("20 mg/ml", 20.0, Basis.CONCENTRATION_MG_PER_ML),
        ("20mg/mL", 20.0, Basis.CONCENTRATION_MG_PER_ML),
        ("5 g/L", 5.0, Basis.CONCENTRATION_MG_PER_ML),
        ("0.1M", 0.1, Basis.MOLARITY_MOL_PER_L),
        ("100 mM", 0.1, Basis.MOLARITY_MOL_PER_L),
        ("250uM", 250e-6, Basis.MOLARITY_MOL_PER_L),
        ("0.3vf", 0.3, Basis.VOLUME_FRACTION),
        ("30 vol%", 0.3, Basis.VOLUME_FRACTION),
        ("5 wt%", 0.05, Basis.MASS_FRACTION),
        ("0.01", 0.01, Basis.MASS_FRACTION),
        (0.25, 0.25, Basis.MASS_FRACTION),
        ("1e-3 M", 1e-3, Basis.MOLARITY_MOL_PER_L),
    ],
)
def test_parse_amount(text: str | float, value: float, basis: Basis) -> None:
    amount = parse_amount(text)
    assert amount.basis is basis
    assert amount.value == pytest.approx(value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("20 furlongs", "unknown unit"),
        ("lots", "cannot read"),
        ("-1 M", ">= 0"),
        ("1.5", r"\[0, 1\]"),
        ("120 vol%", r"\[0, 1\]"),
        ("nan mg/ml", "finite"),
    ],
)
def test_bad_amounts(text: str, message: str) -> None:
    with pytest.raises(DeckFileError, match=message):
        parse_amount(text)


@pytest.mark.parametrize("name", ["saxs_lab", "sans_lab"])
def test_example_decks_load(name: str) -> None:
    deck = load_deck_file(EXAMPLE_DECKS / f"{name}.yaml")
    assert len(deck.wells) == 24
    assert deck.well("4/D6").capacity_ul == 2000.0
    assert {p.name for p in deck.pipettes} == {"p300", "p1000"}
    for s in deck.stocks:
        assert s.available_ul > 0
    solvent = "water" if name == "saxs_lab" else "d2o"
    sds = next(s for s in deck.stocks if s.name.startswith("sds"))
    assert sds.composition.concentrations_mg_per_ml["sds"] == pytest.approx(100.0)
    assert sds.composition.mass_fraction(solvent) > 0.9


def test_the_saxs_deck_file_matches_the_hand_built_deck(saxs_deck: Deck) -> None:
    by_name = {s.name: s.composition for s in water_stocks()}
    for s in saxs_deck.stocks:
        assert s.composition.max_abs_difference(by_name[s.name]) < 1e-12


BASE = {
    "components": [{"name": "water", "formula": "H2O", "density_g_per_ml": 0.997}],
    "stocks": [{"name": "w", "slot": "1", "volume_ul": 100, "capacity_ul": 200, "balance": "water"}],
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"stocks": [{**BASE["stocks"][0], "colour": "blue"}]}, r"stocks\.0\.colour: Extra inputs"),
        ({"stocks": [{**BASE["stocks"][0], "volume_ul": -1}]}, r"stocks\.0\.volume_ul"),
        ({"stocks": [{**BASE["stocks"][0], "volume_ul": 300}]}, r"stocks\[0\] \(w\): .*at most 200"),
        (
            {"stocks": [{**BASE["stocks"][0], "balance": "ethanol"}]},
            r"stocks\[0\].*unknown component 'ethanol'",
        ),
        (
            {"stocks": [{**BASE["stocks"][0], "composition": {"water": "2 furlongs"}}]},
            r"composition\.water: unknown unit",
        ),
        ({"stocks": [{**BASE["stocks"][0], "balance": None}]}, r"stocks\[0\].*composition is empty"),
        ({"components": []}, "components: List should have at least 1 item"),
        (
            {"components": [{"name": "x", "formula": "Qq", "density_g_per_ml": 1}]},
            r"components\[0\]: .*formula",
        ),
        ({"pipettes": [{"name": "p", "min_volume_ul": 10, "max_volume_ul": 5, "tip_type": "t"}]}, "pipettes"),
        ({"plates": [{"slot": "4", "rows": 0, "columns": 3, "well_capacity_ul": 10}]}, r"plates\.0\.rows"),
        ({"pipetes": []}, "pipetes: Extra inputs"),
    ],
)
def test_bad_deck_files_name_the_key(change: dict[str, object], message: str) -> None:
    with pytest.raises(DeckFileError, match=message):
        parse_deck_data({**BASE, **change}).to_deck()


def test_deck_file_io_errors(tmp_path: Path) -> None:
    with pytest.raises(DeckFileError, match="cannot read"):
        load_deck_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("components: [\n")
    with pytest.raises(DeckFileError, match="not valid YAML"):
        load_deck_file(bad)
    bad.write_text("- just a list\n")
    with pytest.raises(DeckFileError, match="mapping"):
        load_deck_file(bad)


def test_a_stock_given_as_molarity_in_the_file_by_hand(tmp_path: Path) -> None:
    path = tmp_path / "deck.yaml"
    path.write_text(
        "components:\n"
        "  - {name: water, formula: H2O, density_g_per_ml: 0.997}\n"
        "  - {name: nacl, formula: NaCl, density_g_per_ml: 2.165, role: solute}\n"
        "stocks:\n"
        "  - {name: brine, slot: '1', volume_ul: 1000, capacity_ul: 2000,\n"
        "     composition: {nacl: 1 M}, balance: water}\n"
    )
    brine = load_deck_file(path).stock("brine")
    m_salt, m_water = 58.443, 997.0  # per mL of solution: 1 mol/L of NaCl and 1 mL of water
    assert brine.composition.mass_fraction("nacl") == pytest.approx(m_salt / (m_salt + m_water), rel=1e-4)
    assert isinstance(brine, Stock)
    by_hand = Composition.from_amounts(
        [WATER, COMPONENTS["nacl"]], {"nacl": Amount(1.0, Basis.MOLARITY_MOL_PER_L)}, balance="water"
    )
    assert brine.composition.max_abs_difference(by_hand) < 1e-15
