"""Decks for tests: the example deck files, a small builder for hand-made decks, the twin's robot on them.

The builder's components and stocks are the surfactant/polymer/salt system of the
example decks, so numbers worked out by hand in one test read the same in another.
`twin_robot(deck, clock, seed=...)` makes the twin's robot (PyLabRobot's chatterbox
underneath) and stops it, with its event loop's thread, when the test ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TypeVar

import pytest

from tandem import Amount, Basis, Component, Components, Composition, Role
from tandem.robots.deck import Deck, Pipette, Stock, TipRack, Well
from tandem.robots.deck_file import load_deck_file, parse_amount
from tandem.sim.clock import StationClock
from tandem.sim.liquid_handler import SimulatedLiquidHandler

R = TypeVar("R", bound=SimulatedLiquidHandler)

EXAMPLE_DECKS = Path(__file__).resolve().parents[1] / "examples" / "decks"

WATER = Component("water", "H2O", 0.997)
D2O = Component("d2o", "D2O", 1.107)
ETHANOL = Component("ethanol", "C2H5OH", 0.789)
SDS = Component("sds", "C12H25NaO4S", 1.10, Role.SOLUTE)
PEG = Component("peg", "C2H4O", 1.20, Role.SOLUTE)
NACL = Component("nacl", "NaCl", 2.165, Role.SOLUTE)
COMPONENTS = Components([WATER, D2O, ETHANOL, SDS, PEG, NACL])

P300 = Pipette("p300", 20.0, 200.0, "tip_300ul")
P1000 = Pipette("p1000", 100.0, 1000.0, "tip_1000ul")


def solution(amounts: Mapping[str, str | float], balance: str) -> Composition:
    """A stock's composition: amounts as `parse_amount` reads them (`"2 M"`), numbers as mass fractions."""
    parsed = {name: _amount(value) for name, value in amounts.items()}
    return Composition.from_amounts(
        Components(COMPONENTS[n] for n in [*parsed, balance]), parsed, balance=balance
    )


def _amount(value: str | float) -> Amount:
    return parse_amount(value) if isinstance(value, str) else Amount(value, Basis.MASS_FRACTION)


def stock(
    name: str, composition: Composition, *, volume_ul: float = 15000.0, dead_volume_ul: float = 500.0
) -> Stock:
    return Stock(name, f"vial-{name}", composition, volume_ul, 20000.0, dead_volume_ul)


def make_deck(
    stocks: Iterable[Stock],
    *,
    wells: Iterable[Well] | None = None,
    pipettes: Iterable[Pipette] = (P300, P1000),
    tips: int = 96,
) -> Deck:
    pipettes = tuple(pipettes)
    if wells is None:
        wells = [Well(f"A{i}", 2000.0, 20.0) for i in range(1, 7)]
    racks = tuple(TipRack(f"rack-{t}", t, tips) for t in sorted({p.tip_type for p in pipettes}))
    return Deck(COMPONENTS, tuple(stocks), tuple(wells), racks, pipettes)


def water_stocks() -> list[Stock]:
    """H2O, SDS 100 mg/mL, PEG 300 mg/mL and NaCl 2 M in H2O: the SAXS example deck's stocks."""
    return [
        stock("water", Composition.pure(WATER)),
        stock("sds_100", solution({"sds": "100 mg/ml"}, "water")),
        stock("peg_300", solution({"peg": "300 mg/ml"}, "water")),
        stock("nacl_2m", solution({"nacl": "2 M"}, "water")),
    ]


@pytest.fixture
def saxs_deck() -> Deck:
    return load_deck_file(EXAMPLE_DECKS / "saxs_lab.yaml")


@pytest.fixture
def sans_deck() -> Deck:
    return load_deck_file(EXAMPLE_DECKS / "sans_lab.yaml")


@pytest.fixture
def water_deck() -> Deck:
    return make_deck(water_stocks())


@pytest.fixture
def twin_robot() -> Iterator[Callable[..., SimulatedLiquidHandler]]:
    """Factory: `twin_robot(deck, clock, seed=..., **options)`; every robot made is closed after the test."""
    with contextlib.ExitStack() as stack:

        def make(deck: Deck, clock: StationClock, **options: object) -> SimulatedLiquidHandler:
            return stack.enter_context(SimulatedLiquidHandler(deck, clock, **options))  # type: ignore[arg-type]

        yield make


_made_in_the_test: list[SimulatedLiquidHandler] = []


def closed_after_the_test(robot: R) -> R:
    """`robot`, to be stopped with its event loop's thread when the test that made it ends (for
    helpers that make robots outside a fixture; a fixture uses `twin_robot`)."""
    _made_in_the_test.append(robot)
    return robot


@pytest.fixture(autouse=True)
def _close_the_robots_made_in_the_test() -> Iterator[None]:
    yield
    while _made_in_the_test:
        _made_in_the_test.pop().close()
