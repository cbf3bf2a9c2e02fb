"""The twin's robot is PyLabRobot's: its trackers follow the twin's liquid, the twin's models stay the same.

What the demo needs unchanged: one seed gives the commands, volumes and station
times the twin's own robot gave before it drove PyLabRobot (the pipetting-error
draws in command order, the times model per command). What is new: PyLabRobot's
trackers hold the state and refuse what a robot would, and the robot owns a
thread, stopped by whoever built it — also when a campaign's lab fails.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from campaign_processes import campaign_file
from fixtures_deck import make_deck, water_stocks
from pylabrobot.liquid_handling.backends import LiquidHandlerChatterboxBackend

from tandem import Amount, Basis, Components, Composition
from tandem.instrument_profile import ProfileFacts
from tandem.instrument_profile_file import bundled_profile
from tandem.robots.deck import Deck, Pipette
from tandem.robots.liquid_handler import BackendError, LiquidHandler
from tandem.robots.pipetting_model import PipettingErrorModel, PipettingTimes
from tandem.robots.pylabrobot_quiet import LOOP_THREAD_PREFIX
from tandem.robots.pylabrobot_registry import UnknownRobotBackendError
from tandem.robots.recipe import Recipe, solve_recipe
from tandem.sim.clock import StationClock
from tandem.sim.instruments import INSTRUMENTS
from tandem.sim.liquid_handler import SimulatedLiquidHandler, station_robot

pytestmark = pytest.mark.timeout(120)

NOISY = (
    Pipette("p300", 20.0, 200.0, "tip_300ul", systematic_error=-0.01, random_error=0.02),
    Pipette("p1000", 100.0, 1000.0, "tip_1000ul", systematic_error=0.005, random_error=0.01),
)


def loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(LOOP_THREAD_PREFIX)]


@pytest.fixture(autouse=True)
def _no_robot_left_before() -> None:
    # a robot another test forgot would make the thread counts below meaningless
    assert loop_threads() == []


@pytest.fixture
def deck() -> Deck:
    return make_deck(water_stocks(), pipettes=NOISY)


def recipe_for(deck: Deck) -> Recipe:
    names = ("sds", "nacl", "water")
    target = Composition.from_amounts(
        Components(deck.components[n] for n in names),
        {"sds": Amount(20.0, Basis.CONCENTRATION_MG_PER_ML), "nacl": Amount(0.1, Basis.MOLARITY_MOL_PER_L)},
        balance="water",
    )
    return solve_recipe(deck, target, total_volume_ul=1000.0)


# -- PyLabRobot underneath ------------------------------------------------------------------------


def test_the_twins_robot_is_pylabrobots_chatterbox_and_its_trackers_follow_the_liquid(deck: Deck) -> None:
    recipe = recipe_for(deck)
    with SimulatedLiquidHandler(deck, StationClock("saxs"), seed=7) as twin:
        assert isinstance(twin.robot.robot, LiquidHandlerChatterboxBackend)
        lh = LiquidHandler(twin, deck, name="lh")
        lh.set(recipe).wait(30)
        plr = twin.robot.plr_deck
        # PyLabRobot was told the volumes the error model drew: its trackers hold the twin's liquid
        for stock in lh.deck.stocks:
            assert plr.volume_ul(stock.name) == pytest.approx(stock.volume_ul, abs=1e-9)
        assert plr.volume_ul(recipe.destination) == pytest.approx(lh.realized().total_volume_ul)
        assert lh.realized().max_abs_difference(recipe.predicted) > 0  # the pipettes erred
        for rack in lh.deck.tip_racks:
            assert plr.tips_left(rack.slot) == rack.tips_left
        assert not any(head.has_tip for head in twin.robot.lh.head.values())


def test_one_seed_gives_the_error_models_draws_and_the_times_models_durations(deck: Deck) -> None:
    """What the twin's robot reported before it drove PyLabRobot, command by command."""
    recipe = recipe_for(deck)
    clock = StationClock("saxs")
    with SimulatedLiquidHandler(deck, clock, seed=7) as twin:
        LiquidHandler(twin, deck, name="lh").set(recipe).wait(30)
    model, times = PipettingErrorModel(7), PipettingTimes()
    expected: list[tuple[str, float | None, float]] = []
    for t in recipe.transfers:
        moved = model.moved_ul(deck.pipette(t.pipette), t.volume_ul)
        expected += [
            ("pick_up_tip", None, times.pick_up_tip_s),
            ("aspirate", moved, times.aspirate_s(t.volume_ul)),
            # the liquid handler dispenses what the tip holds
            ("dispense", moved, times.dispense_s(moved)),
            ("drop_tip", None, times.drop_tip_s),
        ]
    assert [(c.name, c.moved_ul, c.duration_s) for c in twin.commands] == expected
    # the station clock was spent per command, back to back
    starts = [c.start_s for c in twin.commands]
    assert starts == pytest.approx([sum(e[2] for e in expected[:i]) for i in range(len(expected))])
    assert clock.now_s == pytest.approx(sum(e[2] for e in expected))


def test_pylabrobot_refuses_what_a_robot_would_and_a_refusal_spends_no_draw(deck: Deck) -> None:
    with SimulatedLiquidHandler(deck, StationClock("saxs"), seed=3) as twin:
        with pytest.raises(BackendError, match="no tip"):
            twin.aspirate("p300", "water", 100.0)
        with pytest.raises(BackendError):
            twin.drop_tip("p300")  # PyLabRobot: no tip to drop
        with pytest.raises(BackendError):
            twin.dispense("p300", "well-1", 10.0)  # PyLabRobot: no tip
        rack = deck.tip_racks[0].slot
        twin.pick_up_tip("p300", rack)
        with pytest.raises(BackendError):
            twin.pick_up_tip("p300", rack)  # PyLabRobot: a second tip
        with pytest.raises(BackendError, match="cannot aspirate 250"):
            twin.aspirate("p300", "water", 250.0)  # beyond the pipette, though a PyLabRobot tip holds it
        report = twin.aspirate("p300", "water", 100.0)
        # the refusals drew nothing: the first aspiration gets the seed's first draw
        assert report.volume_ul == PipettingErrorModel(3).moved_ul(deck.pipette("p300"), 100.0)
        assert [c.name for c in twin.commands] == ["pick_up_tip", "aspirate"]


def test_an_injected_fault_reaches_the_liquid_handler_and_pylabrobot_keeps_what_was_done(deck: Deck) -> None:
    recipe = recipe_for(deck)
    with SimulatedLiquidHandler(deck, StationClock("saxs"), seed=7) as twin:
        twin.fail_on("dispense", 2)
        lh = LiquidHandler(twin, deck, name="lh")
        with pytest.raises(BackendError, match="simulated fault: dispense"):
            lh.set(recipe).wait(30)
        for stock in lh.deck.stocks:
            assert twin.robot.plr_deck.volume_ul(stock.name) == pytest.approx(stock.volume_ul, abs=1e-9)


# -- which robot, and its lifetime --------------------------------------------------------------


def test_a_twin_station_gets_the_robot_its_profile_names() -> None:
    for name, instrument in INSTRUMENTS.items():
        assert station_robot(instrument) == bundled_profile(name).profile.robot
        assert station_robot(instrument).backend == "chatterbox"
    profile = bundled_profile("saxs").profile
    simulated = profile.robot.model_copy(update={"backend": "simulated"})
    own = ProfileFacts(profile.model_copy(update={"robot": simulated}))
    assert station_robot(own).backend == "simulated"


def test_the_twins_own_robot_by_name_is_the_chatterbox_and_an_unknown_one_is_refused(deck: Deck) -> None:
    with SimulatedLiquidHandler(deck, StationClock("saxs"), backend="simulated") as twin:
        assert isinstance(twin.robot.robot, LiquidHandlerChatterboxBackend)
    with pytest.raises(UnknownRobotBackendError, match="no robot backend named 'hamilton'"):
        SimulatedLiquidHandler(deck, StationClock("saxs"), backend="hamilton")
    assert loop_threads() == []


def test_closing_stops_the_loop_thread_and_the_robot_takes_no_more_commands(deck: Deck) -> None:
    twin = SimulatedLiquidHandler(deck, StationClock("saxs"))
    assert len(loop_threads()) == 1
    twin.close()
    twin.close()  # twice is fine
    assert loop_threads() == []
    with pytest.raises(BackendError, match="closed"):
        twin.pick_up_tip("p300", deck.tip_racks[0].slot)


# A twin lab opens this process's one Channel Access session (libca cannot start twice in a process),
# so each lab below runs in a child interpreter of its own and reports the robot threads it saw.
_CHILD = """
import sys, threading
from tandem.campaign import load_campaign
from tandem.campaign.bundled import DEMO_CAMPAIGN
from tandem.robots.pylabrobot_quiet import LOOP_THREAD_PREFIX

def threads():
    return sum(t.name.startswith(LOOP_THREAD_PREFIX) for t in threading.enumerate())

demo = load_campaign(DEMO_CAMPAIGN)
"""


def run_child(body: str, *args: str) -> list[str]:
    """Run `_CHILD` + `body` in a fresh interpreter; its `print`ed lines."""
    done = subprocess.run(
        [sys.executable, "-P", "-c", _CHILD + textwrap.dedent(body), *args],
        capture_output=True,
        text=True,
        timeout=500,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.split()


@pytest.mark.slow
def test_a_twin_lab_stops_its_robots_and_a_sessions_rig_stops_with_its_session() -> None:
    seen = run_child("""
        import contextlib
        from tandem.campaign.rig import twin_lab
        from tandem.campaign.session_wiring import twin_rig
        from tandem.instrument_profile import default_prefixes
        from tandem.sim.liquid_handler import SimulatedLiquidHandler

        with twin_lab(demo, None) as lab:
            robots = [r.liquid_handler.backend for r in lab.rigs.values()]
            assert all(isinstance(r, SimulatedLiquidHandler) for r in robots)
            print(threads())
            with contextlib.ExitStack() as session:  # a session's rig on the lab's running cell loader
                rig = twin_rig(session, demo, "saxs", default_prefixes("saxs")[1])
                print(threads())
            print(threads())
        print(threads())
    """)
    assert seen == ["2", "3", "2", "0"]


@pytest.mark.slow
def test_a_twin_lab_that_fails_stops_its_robots() -> None:
    seen = run_child("""
        from tandem.campaign.rig import twin_lab

        try:
            with twin_lab(demo, None):
                print(threads())
                raise RuntimeError("mid-campaign")
        except RuntimeError:
            print(threads())
    """)
    assert seen == ["2", "0"]


@pytest.mark.slow
def test_a_rig_that_fails_after_its_robot_is_built_leaves_no_robot() -> None:
    seen = run_child("""
        from tandem.campaign.rig import twin_lab
        from tandem.robots.cell_loader import CellLoader

        def silent(self, timeout):
            print(threads())  # the first station's robot is up
            raise TimeoutError("the cell loader did not answer")

        CellLoader.wait_for_connection = silent
        try:
            with twin_lab(demo, None):
                pass
        except TimeoutError:
            print(threads())
    """)
    assert seen == ["1", "0"]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_no_robot_is_left_after_a_campaign(tmp_path: Path) -> None:
    seen = run_child(
        """
        from pathlib import Path
        from tandem.campaign.runner import CampaignRunner

        outcome = CampaignRunner(load_campaign(sys.argv[1]), Path(sys.argv[2])).run()
        print(outcome.samples if hasattr(outcome, "samples") else "ran", threads())
        """,
        str(campaign_file(tmp_path, "robots-stop", 2)),
        str(tmp_path / "data"),
    )
    assert seen[-1] == "0"
