"""What driving the robot through PyLabRobot costs: one recipe through tandem's ophyd liquid handler.

    .venv/bin/python bench/bench_pylabrobot.py --runs 30

Prints, per backend (the twin's robot: the chatterbox under tandem's models; PyLabRobot's chatterbox; the OT-2
backend's own logic over PyLabRobot's recording transport), the median wall time
to set the robot up, to pipette one four-transfer recipe of the SAXS example deck
(16 commands: every hop to the backend's event-loop thread and back, PyLabRobot's
checks and trackers), and to close it; and the median wall time of one command.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tandem import Amount, Basis, Components, Composition
from tandem.robots.deck import Deck
from tandem.robots.deck_file import load_deck_file
from tandem.robots.liquid_handler import LiquidHandler
from tandem.robots.pipetting_model import PipettingErrorModel
from tandem.robots.pylabrobot_backend import PyLabRobotBackend
from tandem.robots.recipe import Recipe, solve_recipe
from tandem.sim.clock import StationClock
from tandem.sim.liquid_handler import SimulatedLiquidHandler

DECK = Path(__file__).resolve().parents[1] / "examples" / "decks" / "saxs_lab.yaml"
OT2 = {"left_pipette_name": "p300_single_gen2", "right_pipette_name": "p1000_single_gen2", "verbose": False}


def recipe_for(deck: Deck) -> Recipe:
    names = ("sds", "peg", "nacl", "water")
    target = Composition.from_amounts(
        Components(deck.components[n] for n in names),
        {
            "sds": Amount(20.0, Basis.CONCENTRATION_MG_PER_ML),
            "peg": Amount(30.0, Basis.CONCENTRATION_MG_PER_ML),
            "nacl": Amount(0.1, Basis.MOLARITY_MOL_PER_L),
        },
        balance="water",
    )
    return solve_recipe(deck, target, total_volume_ul=1000.0)


def bench(name: str, make: Callable[[], Any], deck: Deck, recipe: Recipe, runs: int) -> None:
    setup, pipette, close, command = [], [], [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        robot = make()
        t1 = time.perf_counter()
        lh = LiquidHandler(robot, deck, name="lh")
        lh.set(recipe).wait(60)
        t2 = time.perf_counter()
        if hasattr(robot, "close"):
            robot.close()
        t3 = time.perf_counter()
        setup.append(t1 - t0)
        pipette.append(t2 - t1)
        close.append(t3 - t2)
        if isinstance(robot, PyLabRobotBackend):  # the simulated robot reports station time instead
            command += [s.duration_s for s in lh.steps]
    per_command = f"{statistics.median(command) * 1e3:.2f} ms" if command else "(station time)"
    print(
        f"{name:<34} set up {statistics.median(setup) * 1e3:7.2f} ms   recipe ({len(lh.steps)} commands) "
        f"{statistics.median(pipette) * 1e3:7.2f} ms   close {statistics.median(close) * 1e3:6.2f} ms   "
        f"one command {per_command}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    deck = load_deck_file(DECK)
    recipe = recipe_for(deck)
    print(f"{len(recipe.transfers)} transfers, {args.runs} runs each, medians")
    bench(
        "twin's robot (chatterbox + models)",
        lambda: SimulatedLiquidHandler(deck, StationClock("saxs"), seed=1),
        deck,
        recipe,
        args.runs,
    )
    bench(
        "PyLabRobot chatterbox",
        lambda: PyLabRobotBackend(deck, "chatterbox", errors=PipettingErrorModel(1)),
        deck,
        recipe,
        args.runs,
    )
    bench(
        "PyLabRobot OT-2 logic",
        lambda: PyLabRobotBackend(deck, "opentrons_ot2_chatterbox", backend_options=OT2),
        deck,
        recipe,
        args.runs,
    )


if __name__ == "__main__":
    main()
