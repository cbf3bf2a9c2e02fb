"""The recipe solver, checked against volumes worked out by hand, and every reason it refuses."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from fixtures_deck import (
    COMPONENTS,
    D2O,
    ETHANOL,
    WATER,
    make_deck,
    solution,
    stock,
    water_stocks,
)

from tandem import Amount, Basis, Component, Components, Composition
from tandem.robots.deck import Deck, Pipette, TipRack, UnknownDeckItemError, Well
from tandem.robots.recipe import Recipe, solve_recipe
from tandem.robots.recipe_feasibility import InfeasibleRecipeError, InvalidRecipeRequestError, ReasonCode
from tandem.robots.recipe_solver import mix
from tandem.robots.recipe_steps import Transfer


def target(amounts: dict[str, Amount], balance: str) -> Composition:
    names = [*amounts, balance]
    return Composition.from_amounts([COMPONENTS[n] for n in names], amounts, balance=balance)


def volumes(recipe: Recipe) -> dict[str, float]:
    return recipe.volumes_by_source()


def test_concentration_and_molarity_in_water_by_hand(water_deck: Deck) -> None:
    """20 mg/mL SDS and 0.1 M NaCl in water, 1 mL, from 100 mg/mL SDS and 2 M NaCl stocks.

    Solutes add no volume, so a stock's volume carries its concentration into the mixture:
    20 mg SDS needs 200 µL of 100 mg/mL; 0.1 mmol NaCl needs 50 µL of 2 M; water fills 750 µL.
    """
    want = target(
        {"sds": Amount(20.0, Basis.CONCENTRATION_MG_PER_ML), "nacl": Amount(0.1, Basis.MOLARITY_MOL_PER_L)},
        "water",
    )
    recipe = solve_recipe(water_deck, want, total_volume_ul=1000.0)
    assert volumes(recipe) == pytest.approx({"water": 750.0, "sds_100": 200.0, "nacl_2m": 50.0}, abs=1e-6)
    assert recipe.predicted.concentrations_mg_per_ml["sds"] == pytest.approx(20.0)
    assert recipe.predicted.molarities_mol_per_l["nacl"] == pytest.approx(0.1)
    assert recipe.predicted.total_volume_ul == pytest.approx(1000.0)
    assert recipe.deviation < 1e-9
    assert recipe.destination == "A1"  # the first empty well that takes 1 mL
    assert all(t.destination == "A1" for t in recipe.transfers)
    # the bulk liquid goes in first, the small additions into it
    assert [t.source for t in recipe.transfers] == ["water", "sds_100", "nacl_2m"]


def test_mass_fraction_target_by_hand(water_deck: Deck) -> None:
    """1 % (w/w) PEG from a 300 mg/mL stock.

    w = 0.3 v / (0.3 v + 0.997 V), so v = 0.997 w V / (0.3 (1 - w)).
    """
    want = target({"peg": Amount(0.01)}, "water")
    recipe = solve_recipe(water_deck, want, total_volume_ul=1000.0)
    v_peg = 0.997 * 0.01 * 1000.0 / (0.3 * 0.99)
    assert volumes(recipe) == pytest.approx({"peg_300": v_peg, "water": 1000.0 - v_peg}, abs=1e-6)
    assert recipe.predicted.mass_fraction("peg") == pytest.approx(0.01, abs=1e-9)


def test_salt_molarity_across_h2o_d2o_by_hand(sans_deck: Deck) -> None:
    """0.1 M NaCl in 30:70 (v/v) H2O:D2O, 1 mL, on the SANS deck (salt stock: 2 M in D2O).

    0.1 mmol NaCl is 50 µL of the stock, which brings 50 µL of D2O: so 300 µL H2O and 650 µL D2O.
    """
    want = target(
        {"nacl": Amount(0.1, Basis.MOLARITY_MOL_PER_L), "water": Amount(0.3, Basis.VOLUME_FRACTION)}, "d2o"
    )
    recipe = solve_recipe(sans_deck, want, total_volume_ul=1000.0)
    assert volumes(recipe) == pytest.approx({"h2o": 300.0, "d2o": 650.0, "nacl_2m_d2o": 50.0}, abs=1e-6)
    assert recipe.predicted.volume_fractions == pytest.approx({"water": 0.3, "d2o": 0.7})
    assert recipe.predicted.molarities_mol_per_l["nacl"] == pytest.approx(0.1)
    assert recipe.destination == "4/A1"


def test_salt_concentration_across_water_and_ethanol_by_hand() -> None:
    """5 mg/mL NaCl in 40:60 (v/v) ethanol:water from water, ethanol and 50 mg/mL NaCl in water, 2 mL.

    10 mg NaCl is 200 µL of the stock (200 µL of water with it): 800 µL ethanol, 1000 µL water.
    """
    deck = make_deck(
        [
            stock("water", Composition.pure(WATER)),
            stock("ethanol", Composition.pure(ETHANOL)),
            stock("nacl_50", solution({"nacl": "50 mg/ml"}, "water")),
        ]
    )
    want = target(
        {"nacl": Amount(5.0, Basis.CONCENTRATION_MG_PER_ML), "ethanol": Amount(0.4, Basis.VOLUME_FRACTION)},
        "water",
    )
    recipe = solve_recipe(deck, want, total_volume_ul=2000.0)
    assert volumes(recipe) == pytest.approx({"ethanol": 800.0, "water": 1000.0, "nacl_50": 200.0}, abs=1e-6)
    assert recipe.predicted.concentrations_mg_per_ml["nacl"] == pytest.approx(5.0)


def test_volumes_above_a_pipette_maximum_are_split_evenly() -> None:
    deck = make_deck([stock("water", Composition.pure(WATER))], wells=[Well("big", 5000.0)])
    recipe = solve_recipe(deck, Composition.pure(WATER), total_volume_ul=2500.0)
    assert recipe.transfers == tuple(Transfer("water", "big", 2500.0 / 3, "p1000") for _ in range(3))
    assert recipe.tips_needed == {"tip_1000ul": 3}


@pytest.mark.parametrize(
    ("volume_ul", "expected"),
    [
        (150.0, [("p300", 150.0)]),  # both need one transfer: the smaller pipette
        (250.0, [("p1000", 250.0)]),  # one p1000 transfer beats two p300 ones
        (40.0, [("p300", 40.0)]),  # below the p1000 minimum
        (1200.0, [("p1000", 600.0), ("p1000", 600.0)]),
    ],
)
def test_pipette_choice(volume_ul: float, expected: list[tuple[str, float]]) -> None:
    deck = make_deck(
        [stock("water", Composition.pure(WATER)), stock("d2o", Composition.pure(D2O))],
        wells=[Well("w", 5000.0)],
    )
    # water and D2O in volume ratio (2000 - v) : v
    want = target({"d2o": Amount(volume_ul / 2000.0, Basis.VOLUME_FRACTION)}, "water")
    recipe = solve_recipe(deck, want, total_volume_ul=2000.0)
    got = [(t.pipette, t.volume_ul) for t in recipe.transfers if t.source == "d2o"]
    assert got == [(p, pytest.approx(v)) for p, v in expected]


def test_the_more_accurate_pipette_wins_a_tie() -> None:
    sloppy = Pipette("sloppy", 10.0, 500.0, "tip_300ul", systematic_error=0.02, random_error=0.02)
    careful = Pipette("careful", 10.0, 500.0, "tip_1000ul", systematic_error=0.001, random_error=0.002)
    deck = make_deck([stock("water", Composition.pure(WATER))], pipettes=[sloppy, careful])
    recipe = solve_recipe(deck, Composition.pure(WATER), total_volume_ul=300.0)
    assert [t.pipette for t in recipe.transfers] == ["careful"]


def test_the_deck_is_not_changed(water_deck: Deck) -> None:
    before = replace(water_deck)
    solve_recipe(water_deck, target({"sds": Amount(0.01)}, "water"), total_volume_ul=500.0)
    assert water_deck == before


def test_json_form_round_trips_the_numbers(water_deck: Deck) -> None:
    recipe = solve_recipe(water_deck, target({"sds": Amount(0.01)}, "water"), total_volume_ul=500.0)
    data = recipe.to_dict()
    assert data["destination"] == recipe.destination
    assert sum(t["volume_ul"] for t in data["transfers"]) == pytest.approx(500.0)
    assert data["predicted"]["mass_fraction"]["sds"] == pytest.approx(0.01, abs=1e-9)
    assert data["deviation"] <= data["tolerance"]


# -- infeasible targets: every reason that applies ------------------------------------------------


def reasons_of(deck: Deck, want: Composition, **kwargs: object) -> InfeasibleRecipeError:
    kwargs.setdefault("total_volume_ul", 1000.0)
    with pytest.raises(InfeasibleRecipeError) as info:
        solve_recipe(deck, want, **kwargs)  # type: ignore[arg-type]
    assert str(info.value).count("\n- ") == len(info.value.reasons)
    return info.value


def test_a_component_no_stock_holds(water_deck: Deck) -> None:
    error = reasons_of(water_deck, target({"ethanol": Amount(0.1, Basis.VOLUME_FRACTION)}, "water"))
    assert ReasonCode.MISSING_COMPONENT in error.codes
    missing = [r for r in error.reasons if r.code is ReasonCode.MISSING_COMPONENT]
    assert [r.details["component"] for r in missing] == ["ethanol"]
    assert "ethanol" in str(error)


def test_a_target_outside_what_the_stocks_reach_reports_the_distance(water_deck: Deck) -> None:
    """200 mg/mL SDS from a 100 mg/mL stock: the best is the stock itself."""
    error = reasons_of(water_deck, target({"sds": Amount(200.0, Basis.CONCENTRATION_MG_PER_ML)}, "water"))
    assert error.codes == {ReasonCode.OUT_OF_REACH}
    (reason,) = error.reasons
    stock_sds = water_stocks()[1].composition.mass_fraction("sds")
    want_sds = target({"sds": Amount(200.0, Basis.CONCENTRATION_MG_PER_ML)}, "water").mass_fraction("sds")
    assert reason.details["distance"] == pytest.approx(want_sds - stock_sds, rel=1e-6)


def test_an_unwanted_component_forced_in(sans_deck: Deck) -> None:
    """SDS in pure H2O on the SANS deck: the only SDS stock is made with D2O."""
    error = reasons_of(sans_deck, target({"sds": Amount(10.0, Basis.CONCENTRATION_MG_PER_ML)}, "water"))
    assert ReasonCode.UNWANTED_COMPONENT in error.codes
    unwanted = next(r for r in error.reasons if r.code is ReasonCode.UNWANTED_COMPONENT)
    assert unwanted.details["component"] == "d2o"
    assert "sds_100_d2o" in unwanted.details["stocks"]


def test_a_volume_below_the_smallest_transfer_and_the_tolerance_it_costs(water_deck: Deck) -> None:
    """1 mM NaCl in 1 mL takes 0.5 µL of the 2 M stock; the p300 moves 20 µL at least."""
    want = target({"nacl": Amount(1e-3, Basis.MOLARITY_MOL_PER_L)}, "water")
    error = reasons_of(water_deck, want, tolerance=1e-6)
    assert error.codes == {ReasonCode.BELOW_MIN_VOLUME, ReasonCode.TOLERANCE_EXCEEDED}
    below = next(r for r in error.reasons if r.code is ReasonCode.BELOW_MIN_VOLUME)
    assert below.details["stock"] == "nacl_2m"
    assert below.details["needed_ul"] == pytest.approx(0.5, rel=1e-4)
    assert "allow_dilution" in below.message
    exceeded = next(r for r in error.reasons if r.code is ReasonCode.TOLERANCE_EXCEEDED)
    # the closest pipettable choice is plain water: the whole NaCl mass fraction is missing
    assert exceeded.details["deviation"] == pytest.approx(want.mass_fraction("nacl"), rel=1e-3)


def test_a_loose_tolerance_accepts_what_a_tight_one_refuses(water_deck: Deck) -> None:
    want = target({"nacl": Amount(1e-3, Basis.MOLARITY_MOL_PER_L)}, "water")
    recipe = solve_recipe(water_deck, want, total_volume_ul=1000.0, tolerance=1e-3)
    assert recipe.deviation <= 1e-3
    assert all(t.volume_ul >= 20.0 for t in recipe.transfers)


def test_not_enough_stock_left_counts_the_dead_volume() -> None:
    deck = make_deck(
        [
            stock("water", Composition.pure(WATER)),
            stock("sds_100", solution({"sds": "100 mg/ml"}, "water"), volume_ul=600.0, dead_volume_ul=500.0),
        ]
    )
    error = reasons_of(deck, target({"sds": Amount(20.0, Basis.CONCENTRATION_MG_PER_ML)}, "water"))
    # with the 100 µL left the best is 10 mg/mL: also more than the tolerance away
    assert error.codes == {ReasonCode.INSUFFICIENT_STOCK, ReasonCode.TOLERANCE_EXCEEDED}
    short = next(r for r in error.reasons if r.code is ReasonCode.INSUFFICIENT_STOCK)
    assert short.details == {
        "stock": "sds_100",
        "available_ul": pytest.approx(100.0),
        "needed_ul": pytest.approx(200.0),
    }


def test_no_tips_left() -> None:
    want = target(
        {"sds": Amount(20.0, Basis.CONCENTRATION_MG_PER_ML), "nacl": Amount(0.1, Basis.MOLARITY_MOL_PER_L)},
        "water",
    )
    deck = make_deck(water_stocks(), tips=2)
    assert solve_recipe(deck, want, total_volume_ul=1000.0).tips_needed == {"tip_1000ul": 1, "tip_300ul": 2}
    error = reasons_of(deck.with_tips_used("tip_300ul", 1), want)
    assert error.codes == {ReasonCode.NO_TIPS}
    assert error.reasons[0].details == {"tip_type": "tip_300ul", "needed": 2, "left": 1}


def test_destination_too_small_and_occupied_and_missing_component_all_reported(water_deck: Deck) -> None:
    filled = water_deck.with_well_contents("A2", Composition.pure(WATER, total_volume_ul=100.0))
    small = replace(filled, wells=(*filled.wells, Well("tiny", 500.0)))
    error = reasons_of(
        small, target({"ethanol": Amount(0.1)}, "water"), destination="A2", total_volume_ul=1000.0
    )
    assert error.codes == {
        ReasonCode.MISSING_COMPONENT,
        ReasonCode.OUT_OF_REACH,
        ReasonCode.DESTINATION_OCCUPIED,
    }
    error = reasons_of(small, Composition.pure(WATER), destination="tiny")
    assert error.codes == {ReasonCode.DESTINATION_TOO_SMALL}


def test_no_free_well_big_enough() -> None:
    deck = make_deck(water_stocks(), wells=[Well("A1", 500.0)])
    error = reasons_of(deck, Composition.pure(WATER), total_volume_ul=1000.0)
    assert error.codes == {ReasonCode.NO_FREE_WELL}
    assert error.reasons[0].details["largest_empty_ul"] == 500.0


def test_a_deck_without_pipettes() -> None:
    deck = Deck(
        COMPONENTS, tuple(water_stocks()), (Well("A1", 2000.0),), (TipRack("t", "tip_300ul", 96),), ()
    )
    error = reasons_of(deck, Composition.pure(WATER))
    assert ReasonCode.NO_PIPETTE in error.codes


def test_a_deck_without_stocks() -> None:
    deck = make_deck([])
    error = reasons_of(deck, Composition.pure(WATER))
    assert error.codes == {ReasonCode.MISSING_COMPONENT, ReasonCode.OUT_OF_REACH}


# -- dilution ---------------------------------------------------------------------------------------


def test_dilution_makes_an_intermediate_first(water_deck: Deck) -> None:
    want = target({"nacl": Amount(1e-3, Basis.MOLARITY_MOL_PER_L)}, "water")
    recipe = solve_recipe(water_deck, want, total_volume_ul=1000.0, tolerance=1e-6, allow_dilution=True)
    assert recipe.deviation <= 1e-6
    assert recipe.predicted.molarities_mol_per_l["nacl"] == pytest.approx(1e-3, rel=1e-3)
    (slot,) = recipe.intermediates
    assert slot != recipe.destination
    into_intermediate = [t for t in recipe.transfers if t.destination == slot]
    from_intermediate = [t for t in recipe.transfers if t.source == slot]
    assert {t.source for t in into_intermediate} == {"water", "nacl_2m"}
    assert from_intermediate
    assert all(t.destination == recipe.destination for t in from_intermediate)
    last_fill = max(i for i, t in enumerate(recipe.transfers) if t.destination == slot)
    first_use = min(i for i, t in enumerate(recipe.transfers) if t.source == slot)
    assert last_fill < first_use  # the intermediate is made before it is used
    pipettes = {p.name: p for p in water_deck.pipettes}
    for t in recipe.transfers:
        assert pipettes[t.pipette].min_volume_ul <= t.volume_ul <= pipettes[t.pipette].max_volume_ul
    # the intermediate's composition is what its transfers make
    made = mix((water_deck.source_composition(t.source), t.volume_ul) for t in into_intermediate)
    assert made.max_abs_difference(recipe.intermediates[slot]) < 1e-12


def test_dilution_needs_a_free_well(water_deck: Deck) -> None:
    only_one = replace(water_deck, wells=(Well("A1", 2000.0),))
    want = target({"nacl": Amount(1e-3, Basis.MOLARITY_MOL_PER_L)}, "water")
    error = reasons_of(only_one, want, tolerance=1e-6, allow_dilution=True)
    assert ReasonCode.BELOW_MIN_VOLUME in error.codes


def test_a_very_dilute_target_takes_a_serial_dilution() -> None:
    """1 µM NaCl from a 2 M stock: a factor ~2e6 takes more than one 2 mL well."""
    deck = make_deck(water_stocks(), wells=[Well(f"A{i}", 2000.0, 20.0) for i in range(1, 7)])
    want = target({"nacl": Amount(1e-6, Basis.MOLARITY_MOL_PER_L)}, "water")
    recipe = solve_recipe(deck, want, total_volume_ul=1000.0, tolerance=1e-8, allow_dilution=True)
    assert recipe.predicted.molarities_mol_per_l["nacl"] == pytest.approx(1e-6, rel=1e-3)
    wells_used = {t.destination for t in recipe.transfers} - {recipe.destination}
    assert len(wells_used) >= 3


# -- malformed requests -----------------------------------------------------------------------------


@pytest.mark.parametrize("volume", [-1.0, 0.0, math.nan, math.inf])
def test_bad_total_volumes(water_deck: Deck, volume: float) -> None:
    with pytest.raises(InvalidRecipeRequestError, match="total_volume_ul"):
        solve_recipe(water_deck, Composition.pure(WATER), total_volume_ul=volume)


@pytest.mark.parametrize("tolerance", [0.0, -1e-3, 1.5, math.nan])
def test_bad_tolerances(water_deck: Deck, tolerance: float) -> None:
    with pytest.raises(InvalidRecipeRequestError, match="tolerance"):
        solve_recipe(water_deck, Composition.pure(WATER), total_volume_ul=100.0, tolerance=tolerance)


def test_an_unknown_destination(water_deck: Deck) -> None:
    with pytest.raises(UnknownDeckItemError, match="Z9"):
        solve_recipe(water_deck, Composition.pure(WATER), total_volume_ul=100.0, destination="Z9")


def test_a_target_that_redefines_a_deck_component(water_deck: Deck) -> None:
    other_water = Component("water", "H2O", 1.0)
    with pytest.raises(InvalidRecipeRequestError, match="differently"):
        solve_recipe(water_deck, Composition.pure(other_water), total_volume_ul=100.0)


def test_a_target_that_is_not_a_composition(water_deck: Deck) -> None:
    with pytest.raises(InvalidRecipeRequestError, match="Composition"):
        solve_recipe(water_deck, {"water": 1.0}, total_volume_ul=100.0)  # type: ignore[arg-type]


def test_mix_refuses_bad_volumes() -> None:
    with pytest.raises(InvalidRecipeRequestError):
        mix([(Composition.pure(WATER), -1.0)])
    with pytest.raises(InvalidRecipeRequestError):
        mix([(Composition.pure(WATER), 0.0)])
    # a subnormal volume of a half-and-half mixture: each share of its mass underflows to zero
    half = Composition(Components([WATER, D2O]), (0.5, 0.5), None)
    with pytest.raises(InvalidRecipeRequestError, match="nothing to mix"):
        mix([(half, 5e-324)])


def test_components_unused_are_fine() -> None:
    """A deck may define components no stock holds; a target without them is unaffected."""
    deck = make_deck([stock("water", Composition.pure(WATER)), stock("peg", solution({"peg": 0.2}, "water"))])
    recipe = solve_recipe(deck, target({"peg": Amount(0.05)}, "water"), total_volume_ul=1000.0)
    assert recipe.predicted.mass_fraction("peg") == pytest.approx(0.05, abs=1e-9)
    assert set(recipe.predicted.components) == {"water", "peg"}
