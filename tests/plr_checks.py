"""What the tests of tandem's PyLabRobot robots check the same way on every robot: a recipe to pipette,
the robot's trackers against tandem's inventory, and the robots' event-loop threads."""

from __future__ import annotations

import threading

import pytest

from tandem import Amount, Basis, Components, Composition
from tandem.robots.deck import Deck
from tandem.robots.pylabrobot_backend import PyLabRobotBackend
from tandem.robots.pylabrobot_quiet import LOOP_THREAD_PREFIX
from tandem.robots.recipe import Recipe, solve_recipe


def recipe_for(deck: Deck, volume_ul: float = 1000.0) -> Recipe:
    """SDS 20 mg/mL and NaCl 0.1 M in water: three stocks, two pipettes."""
    target = Composition.from_amounts(
        Components(deck.components[n] for n in ("sds", "nacl", "water")),
        {"sds": Amount(20.0, Basis.CONCENTRATION_MG_PER_ML), "nacl": Amount(0.1, Basis.MOLARITY_MOL_PER_L)},
        balance="water",
    )
    return solve_recipe(deck, target, total_volume_ul=volume_ul)


def assert_trackers_agree(robot: PyLabRobotBackend, deck: Deck) -> None:
    """PyLabRobot's volume and tip trackers hold what tandem's inventory holds."""
    for stock in deck.stocks:
        assert robot.plr_deck.volume_ul(stock.name) == pytest.approx(stock.volume_ul, abs=1e-9)
    for well in deck.wells:
        assert robot.plr_deck.volume_ul(well.slot) == pytest.approx(well.volume_ul, abs=1e-9)
    for rack in deck.tip_racks:
        assert robot.plr_deck.tips_left(rack.slot) == rack.tips_left


def loop_threads() -> list[threading.Thread]:
    """The event-loop threads tandem's PyLabRobot robots run, alive now."""
    return [t for t in threading.enumerate() if t.name.startswith(LOOP_THREAD_PREFIX)]
