"""The liquid handler front end over the twin's robot (PyLabRobot underneath): execution, errors, rollback."""

from __future__ import annotations

import dataclasses
import json
import threading

import pytest
from fixtures_deck import COMPONENTS, WATER, closed_after_the_test, make_deck, water_stocks
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tandem import Amount, Basis, Components, Composition
from tandem.protocols import StepReport
from tandem.robots.deck import Deck, Pipette
from tandem.robots.inventory import InvalidRecipeForDeckError, InventoryError, check_recipe
from tandem.robots.liquid_handler import BackendError, LiquidHandler, LiquidHandlerBusyError
from tandem.robots.recipe import Recipe, solve_recipe
from tandem.robots.recipe_feasibility import InfeasibleRecipeError, ReasonCode
from tandem.robots.recipe_solver import mix
from tandem.robots.recipe_steps import Transfer
from tandem.sim.clock import StationClock
from tandem.sim.liquid_handler import SimulatedLiquidHandler

pytestmark = pytest.mark.timeout(60)

NOISY_P300 = Pipette("p300", 20.0, 200.0, "tip_300ul", systematic_error=-0.01, random_error=0.02)
NOISY_P1000 = Pipette("p1000", 100.0, 1000.0, "tip_1000ul", systematic_error=0.005, random_error=0.01)


def target(amounts: dict[str, Amount], balance: str = "water") -> Composition:
    return Composition.from_amounts(
        Components(COMPONENTS[n] for n in [*amounts, balance]), amounts, balance=balance
    )


SDS_NACL = {"sds": Amount(20.0, Basis.CONCENTRATION_MG_PER_ML), "nacl": Amount(0.1, Basis.MOLARITY_MOL_PER_L)}


def handler(deck: Deck, *, seed: int = 7) -> tuple[LiquidHandler, SimulatedLiquidHandler, StationClock]:
    clock = StationClock("saxs")
    backend = SimulatedLiquidHandler(deck, clock, seed=seed)
    closed_after_the_test(backend)
    return LiquidHandler(backend, deck, name="lh"), backend, clock


def noisy_deck(**kwargs: object) -> Deck:
    return make_deck(water_stocks(), pipettes=(NOISY_P300, NOISY_P1000), **kwargs)  # type: ignore[arg-type]


def recipe_for(deck: Deck, volume_ul: float = 1000.0) -> Recipe:
    return solve_recipe(deck, target(SDS_NACL), total_volume_ul=volume_ul)


# -- execution ------------------------------------------------------------------------------------


def test_a_recipe_is_executed_as_tip_aspirate_dispense_drop_per_transfer() -> None:
    deck = noisy_deck()
    recipe = recipe_for(deck)
    lh, backend, clock = handler(deck)
    lh.set(recipe).wait(30)
    names = [c.name for c in backend.commands]
    assert names == ["pick_up_tip", "aspirate", "dispense", "drop_tip"] * len(recipe.transfers)
    aspirates = [c for c in backend.commands if c.name == "aspirate"]
    assert [(c.location, c.volume_ul, c.pipette) for c in aspirates] == [
        (t.source, t.volume_ul, t.pipette) for t in recipe.transfers
    ]
    # station time: every step is on the clock and in the device's readings
    assert clock.now_s == pytest.approx(sum(c.duration_s for c in backend.commands))
    reading = lh.read()
    assert reading["lh_prepare_time_s"]["value"] == pytest.approx(clock.now_s)
    assert len(reading["lh_step_durations_s"]["value"]) == len(backend.commands)


def test_realized_composition_is_what_the_robot_really_moved_and_differs_from_the_target() -> None:
    deck = noisy_deck()
    recipe = recipe_for(deck)
    lh, backend, _ = handler(deck)
    lh.set(recipe).wait(30)
    moved = [
        (deck.stock(c.location).composition, c.moved_ul)  # type: ignore[arg-type]
        for c in backend.commands
        if c.name == "aspirate"
    ]
    expected = mix((comp, v) for comp, v in moved if v)
    realized = lh.realized()
    assert realized.mass_fractions == pytest.approx(expected.mass_fractions, abs=1e-12)
    assert realized.total_volume_ul == pytest.approx(expected.total_volume_ul)
    # pipetting error: off the target, by about what 1-2 % volume errors give
    deviation = realized.max_abs_difference(recipe.target)
    assert 0 < deviation < 0.01
    assert lh.deviation.get() == pytest.approx(deviation)
    assert json.loads(lh.realized_json.get())["mass_fraction"] == pytest.approx(realized.mass_fractions)
    assert json.loads(lh.target_json.get())["mass_fraction"] == pytest.approx(recipe.target.mass_fractions)


def test_perfect_pipettes_realize_the_prediction() -> None:
    deck = make_deck(water_stocks())  # error-free pipettes
    recipe = recipe_for(deck)
    lh, _, _ = handler(deck)
    lh.set(recipe).wait(30)
    assert lh.realized().max_abs_difference(recipe.predicted) < 1e-12


def test_the_same_seed_pipettes_the_same_sample() -> None:
    deck = noisy_deck()
    recipe = recipe_for(deck)
    results = []
    for seed in (1, 1, 2):
        lh, _, _ = handler(deck, seed=seed)
        lh.set(recipe).wait(30)
        results.append(lh.realized().mass_fractions)
    assert results[0] == results[1]
    assert results[0] != results[2]


def test_inventory_is_updated_by_what_was_moved() -> None:
    deck = noisy_deck()
    recipe = recipe_for(deck)
    lh, backend, _ = handler(deck)
    lh.set(recipe).wait(30)
    for name, _ in recipe.volumes_by_source().items():
        taken = sum(
            c.moved_ul or 0.0 for c in backend.commands if c.name == "aspirate" and c.location == name
        )
        assert lh.deck.stock(name).volume_ul == pytest.approx(deck.stock(name).volume_ul - taken)
    for tip_type, n in recipe.tips_needed.items():
        assert lh.deck.tips_left(tip_type) == deck.tips_left(tip_type) - n
    assert lh.deck.well(recipe.destination).contents == lh.realized()


def test_a_station_sample_takes_minutes_of_station_time() -> None:
    deck = noisy_deck()
    lh, backend, clock = handler(deck)
    lh.set(recipe_for(deck)).wait(30)
    per_transfer = clock.now_s / (len(backend.commands) / 4)
    assert 15.0 < per_transfer < 40.0  # a tip change (~9 s) plus a 10-20 s transfer
    assert clock.now_s > 60.0


# -- refusals before any command ---------------------------------------------------------------


def refused(deck: Deck, recipe: Recipe, error: type[Exception]) -> Exception:
    lh, backend, clock = handler(deck)
    with pytest.raises(error) as info:
        lh.set(recipe)
    assert backend.commands == []
    assert clock.now_s == 0.0
    assert lh.deck == deck
    return info.value


def test_no_tips_left_is_refused_before_any_command() -> None:
    deck = noisy_deck()
    recipe = recipe_for(deck)
    racks = tuple(dataclasses.replace(r, n_used=r.n_tips) for r in deck.tip_racks)
    exc = refused(dataclasses.replace(deck, tip_racks=racks), recipe, InventoryError)
    assert ReasonCode.NO_TIPS in exc.codes  # type: ignore[attr-defined]
    assert isinstance(exc, InfeasibleRecipeError)


def test_an_empty_stock_is_refused_before_any_command() -> None:
    deck = noisy_deck()
    recipe = recipe_for(deck)
    drained = deck.with_stock_volume("sds_100", deck.stock("sds_100").dead_volume_ul)
    exc = refused(drained, recipe, InventoryError)
    assert exc.codes == {ReasonCode.INSUFFICIENT_STOCK}  # type: ignore[attr-defined]
    assert "sds_100" in str(exc)


def test_over_filling_a_well_is_refused_before_any_command() -> None:
    deck = noisy_deck()
    recipe = recipe_for(deck)
    small = tuple(
        dataclasses.replace(w, capacity_ul=500.0) if w.slot == recipe.destination else w for w in deck.wells
    )
    exc = refused(dataclasses.replace(deck, wells=small), recipe, InventoryError)
    assert exc.codes == {ReasonCode.DESTINATION_TOO_SMALL}  # type: ignore[attr-defined]


def test_an_occupied_destination_is_refused_before_any_command() -> None:
    deck = noisy_deck()
    recipe = recipe_for(deck)
    occupied = deck.with_well_contents(recipe.destination, Composition.pure(WATER, total_volume_ul=100.0))
    exc = refused(occupied, recipe, InventoryError)
    assert exc.codes == {ReasonCode.DESTINATION_OCCUPIED}  # type: ignore[attr-defined]


def test_every_shortage_is_reported_at_once() -> None:
    deck = noisy_deck()
    recipe = recipe_for(deck)
    racks = tuple(dataclasses.replace(r, n_used=r.n_tips) for r in deck.tip_racks)
    worse = dataclasses.replace(deck.with_stock_volume("water", 0.0), tip_racks=racks)
    exc = refused(worse, recipe, InventoryError)
    assert exc.codes == {ReasonCode.NO_TIPS, ReasonCode.INSUFFICIENT_STOCK}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("transfer", "message"),
    [
        (Transfer("nope", "A1", 100.0, "p300"), "no stock or well 'nope'"),
        (Transfer("water", "Z9", 100.0, "p300"), "no well 'Z9'"),
        (Transfer("water", "A1", 100.0, "p5000"), "no pipette 'p5000'"),
        (Transfer("water", "A1", 5.0, "p300"), "moves 20-200 µL"),
        (Transfer("water", "A1", 500.0, "p300"), "moves 20-200 µL"),
        (Transfer("A2", "A1", 100.0, "p300"), "well 'A2' is empty"),
    ],
)
def test_a_recipe_that_does_not_fit_the_deck_is_refused(transfer: Transfer, message: str) -> None:
    deck = noisy_deck()
    good = recipe_for(deck)
    bad = dataclasses.replace(good, transfers=(*good.transfers, transfer))
    exc = refused(deck, bad, InvalidRecipeForDeckError)
    assert message in str(exc)


def test_something_other_than_a_recipe_is_refused() -> None:
    deck = noisy_deck()
    lh, backend, _ = handler(deck)
    with pytest.raises(InvalidRecipeForDeckError, match="set to a Recipe"):
        lh.set({"water": 1.0})  # type: ignore[arg-type]
    assert backend.commands == []


def test_check_recipe_returns_the_deck_after_without_changing_it() -> None:
    deck = noisy_deck()
    recipe = recipe_for(deck)
    after = check_recipe(deck, recipe)
    assert after.well(recipe.destination).contents is not None
    assert after.well(recipe.destination).volume_ul == pytest.approx(1000.0)
    assert deck.well(recipe.destination).is_empty


# -- commit and rollback -----------------------------------------------------------------------


def test_a_failed_command_rolls_back_its_reservation_and_keeps_committed_ones() -> None:
    deck = noisy_deck()
    recipe = recipe_for(deck)
    lh, backend, _ = handler(deck)
    backend.fail_on("aspirate", 2)
    status = lh.set(recipe)
    with pytest.raises(BackendError, match="aspirate failed"):
        status.wait(30)
    first, second = recipe.transfers[0], recipe.transfers[1]
    assert [c.name for c in backend.commands] == [
        "pick_up_tip",
        "aspirate",
        "dispense",
        "drop_tip",
        "pick_up_tip",
    ]
    moved = backend.commands[1].moved_ul
    assert moved is not None
    assert lh.deck.stock(first.source).volume_ul == pytest.approx(deck.stock(first.source).volume_ul - moved)
    if second.source != first.source:
        assert lh.deck.stock(second.source) == deck.stock(second.source)  # rolled back
    assert lh.inventory.tips.get(second.pipette) is None  # nothing in the tip
    # the second tip was picked up (committed) before the failure
    used = 2 if deck.pipette(first.pipette).tip_type == deck.pipette(second.pipette).tip_type else 1
    tip_type = deck.pipette(second.pipette).tip_type
    assert lh.deck.tips_left(tip_type) == deck.tips_left(tip_type) - used
    assert lh.deck.well(recipe.destination).volume_ul == pytest.approx(moved)


class _GatedBackend(SimulatedLiquidHandler):
    """Holds its first command until released, to catch a recipe mid-run."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.gate = threading.Event()

    def pick_up_tip(self, pipette: str, tip_rack: str) -> StepReport:
        self.gate.wait(30)
        return super().pick_up_tip(pipette, tip_rack)


def test_a_second_recipe_while_one_runs_is_refused() -> None:
    deck = noisy_deck()
    backend = _GatedBackend(deck, StationClock("saxs"))
    closed_after_the_test(backend)
    lh = LiquidHandler(backend, deck, name="lh")
    status = lh.set(recipe_for(deck))
    try:
        with pytest.raises(LiquidHandlerBusyError):
            lh.set(recipe_for(deck))
    finally:
        backend.gate.set()
    status.wait(30)


def test_the_backend_must_speak_the_protocol() -> None:
    with pytest.raises(TypeError, match="LiquidHandlerBackend"):
        LiquidHandler(object(), noisy_deck(), name="lh")  # type: ignore[arg-type]


# -- properties --------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sds_mg_per_ml=st.floats(2.0, 60.0),
    nacl_m=st.floats(0.01, 0.5),
    volume_ul=st.floats(300.0, 1900.0),
    seed=st.integers(0, 2**16),
)
def test_liquid_is_conserved_and_the_error_stays_within_pipetting_error(
    sds_mg_per_ml: float, nacl_m: float, volume_ul: float, seed: int
) -> None:
    deck = noisy_deck()
    want = target(
        {
            "sds": Amount(sds_mg_per_ml, Basis.CONCENTRATION_MG_PER_ML),
            "nacl": Amount(nacl_m, Basis.MOLARITY_MOL_PER_L),
        }
    )
    try:
        recipe = solve_recipe(deck, want, total_volume_ul=volume_ul)
    except InfeasibleRecipeError:
        return
    lh, backend, _ = handler(deck, seed=seed)
    lh.set(recipe).wait(30)
    drawn = sum(c.moved_ul or 0.0 for c in backend.commands if c.name == "aspirate")
    stocks_before = sum(s.volume_ul for s in deck.stocks)
    stocks_after = sum(s.volume_ul for s in lh.deck.stocks)
    assert stocks_before - stocks_after == pytest.approx(drawn)
    assert lh.realized().total_volume_ul == pytest.approx(drawn)
    # volumes off by a few % at most shift the realized mass fractions by a few % of their size
    for name, w in recipe.predicted.mass_fractions.items():
        assert lh.realized().mass_fraction(name) == pytest.approx(w, rel=0.2, abs=1e-6)
