"""tandem's liquid handler over PyLabRobot: real PyLabRobot, its chatterbox robots, no mocks.

The ophyd device keeps tandem's inventory; PyLabRobot keeps its own trackers. After
any recipe, finished or failed, the two must agree, because both record only what
the robot really did.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from fixtures_deck import EXAMPLE_DECKS, make_deck, water_stocks
from plr_checks import assert_trackers_agree, loop_threads, recipe_for
from pylabrobot.liquid_handling.backends import LiquidHandlerChatterboxBackend
from pylabrobot.resources import does_tip_tracking, does_volume_tracking

from tandem.robots.deck import Deck, DeckError, Pipette, Well
from tandem.robots.deck_file import DeckFileError, load_deck_file, parse_deck_data
from tandem.robots.inventory import InventoryError
from tandem.robots.liquid_handler import BackendError, LiquidHandler
from tandem.robots.pipetting_model import PipettingErrorModel, PipettingTimes
from tandem.robots.pylabrobot_backend import PyLabRobotBackend
from tandem.robots.pylabrobot_deck_kinds import DeckTranslationError
from tandem.robots.pylabrobot_registry import BACKENDS, RobotBackendConfigError, UnknownRobotBackendError
from tandem.sim.clock import StationClock
from tandem.sim.liquid_handler import SimulatedLiquidHandler
from tandem.sim.ot2_http import OT2Simulator

pytestmark = pytest.mark.timeout(60)

NOISY_P300 = Pipette("p300", 20.0, 200.0, "tip_300ul", systematic_error=-0.01, random_error=0.02)
NOISY_P1000 = Pipette("p1000", 100.0, 1000.0, "tip_1000ul", systematic_error=0.005, random_error=0.01)
OT2_PIPETTES = {"left_pipette_name": "p300_single_gen2", "right_pipette_name": "p1000_single_gen2"}


class RecordingChatterbox(LiquidHandlerChatterboxBackend):  # type: ignore[misc]
    """PyLabRobot's chatterbox that also keeps the names of the commands it received."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.received: list[str] = []

    async def pick_up_tips(self, ops: Any, use_channels: Any, **kwargs: Any) -> None:
        self.received.append("pick_up_tips")
        await super().pick_up_tips(ops, use_channels, **kwargs)

    async def aspirate(self, ops: Any, use_channels: Any, **kwargs: Any) -> None:
        self.received.append("aspirate")
        await super().aspirate(ops, use_channels, **kwargs)

    async def dispense(self, ops: Any, use_channels: Any, **kwargs: Any) -> None:
        self.received.append("dispense")
        await super().dispense(ops, use_channels, **kwargs)

    async def drop_tips(self, ops: Any, use_channels: Any, **kwargs: Any) -> None:
        self.received.append("drop_tips")
        await super().drop_tips(ops, use_channels, **kwargs)


class JammingChatterbox(RecordingChatterbox):
    """Fails its `n`-th aspiration as a real robot reports a fault: an exception with its message."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    async def aspirate(self, ops: Any, use_channels: Any, **kwargs: Any) -> None:
        if self.received.count("aspirate") + 1 == self.n:
            self.received.append("aspirate (failed)")
            raise RuntimeError("Pipetting channel 0: clot detected during aspiration (error 74)")
        await super().aspirate(ops, use_channels, **kwargs)


class FailingSetupChatterbox(LiquidHandlerChatterboxBackend):  # type: ignore[misc]
    async def setup(self) -> None:
        raise ConnectionError("robot at 10.0.0.7 does not answer")


@pytest.fixture
def noisy_deck() -> Deck:
    return make_deck(water_stocks(), pipettes=(NOISY_P300, NOISY_P1000))


@pytest.fixture
def no_threads_left() -> Iterator[None]:
    before = set(loop_threads())
    yield
    assert set(loop_threads()) <= before


# -- a whole recipe -------------------------------------------------------------------------------


def test_a_recipe_through_pylabrobot_leaves_its_trackers_and_the_inventory_agreeing(
    noisy_deck: Deck, no_threads_left: None
) -> None:
    recipe = recipe_for(noisy_deck)
    chatterbox = RecordingChatterbox()
    with PyLabRobotBackend(noisy_deck, chatterbox, errors=PipettingErrorModel(seed=5)) as robot:
        lh = LiquidHandler(robot, noisy_deck, name="lh")
        lh.set(recipe).wait(30)
        assert chatterbox.received == ["pick_up_tips", "aspirate", "dispense", "drop_tips"] * len(
            recipe.transfers
        )
        assert_trackers_agree(robot, lh.deck)
        # the error model moved other volumes than were asked for, and the sample shows it
        assert lh.deck.well(recipe.destination).volume_ul != pytest.approx(1000.0, abs=1e-6)
        assert 0 < lh.realized().max_abs_difference(recipe.target) < 0.01
        # no tip is left on the head, and no liquid in one
        assert all(not tracker.has_tip for tracker in robot.lh.head.values())


def test_without_an_error_model_the_commanded_volumes_are_reported(water_deck: Deck) -> None:
    recipe = recipe_for(water_deck)
    with PyLabRobotBackend(water_deck, "chatterbox") as robot:
        lh = LiquidHandler(robot, water_deck, name="lh")
        lh.set(recipe).wait(30)
        assert [s.volume_ul for s in lh.steps if s.command == "aspirate"] == [
            t.volume_ul for t in recipe.transfers
        ]
        assert lh.realized().max_abs_difference(recipe.predicted) < 1e-12
        assert_trackers_agree(robot, lh.deck)
        # measured wall time: real, small, and positive
        assert all(0 < s.duration_s < 5 for s in lh.steps)


def test_pylabrobot_and_the_simulated_robot_share_one_error_model(noisy_deck: Deck) -> None:
    recipe = recipe_for(noisy_deck)
    with SimulatedLiquidHandler(noisy_deck, StationClock("saxs"), seed=11) as twin:
        simulated = LiquidHandler(twin, noisy_deck, name="sim")
        simulated.set(recipe).wait(30)
    times = PipettingTimes()
    with PyLabRobotBackend(noisy_deck, errors=PipettingErrorModel(seed=11), times=times) as robot:
        lh = LiquidHandler(robot, noisy_deck, name="lh")
        lh.set(recipe).wait(30)
    assert [(s.command, s.volume_ul, s.duration_s) for s in lh.steps] == [
        (s.command, s.volume_ul, s.duration_s) for s in simulated.steps
    ]
    assert lh.realized() == simulated.realized()


def test_the_terminal_shows_nothing_of_pylabrobot(
    water_deck: Deck, capfd: pytest.CaptureFixture[str]
) -> None:
    with PyLabRobotBackend(water_deck, "chatterbox") as robot:
        LiquidHandler(robot, water_deck, name="lh").set(recipe_for(water_deck)).wait(30)
        with pytest.raises(BackendError):
            robot.aspirate("p300", "water", 50.0)  # no tip: PyLabRobot refuses, and may log
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


# -- refusals ---------------------------------------------------------------------------------------


def test_an_infeasible_recipe_sends_no_command(noisy_deck: Deck) -> None:
    recipe = recipe_for(noisy_deck)
    drained = noisy_deck.with_stock_volume("sds_100", 600.0)  # 100 µL above the dead volume
    chatterbox = RecordingChatterbox()
    with PyLabRobotBackend(drained, chatterbox) as robot:
        lh = LiquidHandler(robot, drained, name="lh")
        with pytest.raises(InventoryError, match="sds_100"):
            lh.set(recipe)
        assert chatterbox.received == []
        assert_trackers_agree(robot, drained)


def test_pylabrobot_itself_refuses_what_a_robot_would(water_deck: Deck) -> None:
    with PyLabRobotBackend(water_deck) as robot:
        with pytest.raises(BackendError, match="NoTipError"):
            robot.aspirate("p300", "water", 50.0)
        robot.pick_up_tip("p300", "rack-tip_300ul")
        with pytest.raises(BackendError, match="TooLittleLiquidError"):
            robot.aspirate("p300", "A1", 50.0)  # an empty well
        with pytest.raises(BackendError, match="HasTipError"):
            robot.pick_up_tip("p300", "rack-tip_300ul")
        with pytest.raises(BackendError, match="no stock or well 'nope'"):
            robot.aspirate("p300", "nope", 50.0)
        robot.drop_tip("p300")
    emptied = dataclasses.replace(
        water_deck, tip_racks=tuple(dataclasses.replace(r, n_used=r.n_tips) for r in water_deck.tip_racks)
    )
    with PyLabRobotBackend(emptied) as robot, pytest.raises(BackendError, match="NoTipError"):
        robot.pick_up_tip("p1000", "rack-tip_1000ul")


def test_a_refused_aspiration_leaves_no_pending_change_in_pylabrobot(water_deck: Deck) -> None:
    with PyLabRobotBackend(water_deck) as robot:
        robot.pick_up_tip("p300", "rack-tip_300ul")
        # more than the tip holds: PyLabRobot has already taken it from the vial when the tip refuses
        with pytest.raises(BackendError, match="TooLittleVolumeError"):
            robot.aspirate("p300", "water", 400.0)
        water = robot.plr_deck.containers["water"].tracker
        assert water.get_used_volume() == water.volume == 15000.0
        robot.drop_tip("p300")


def test_pylabrobots_trackers_are_on_only_while_a_backend_is_open(water_deck: Deck) -> None:
    assert not does_volume_tracking()
    assert not does_tip_tracking()
    with PyLabRobotBackend(water_deck), PyLabRobotBackend(water_deck):
        assert does_volume_tracking()
        assert does_tip_tracking()
    assert not does_volume_tracking()
    assert not does_tip_tracking()


# -- faults ---------------------------------------------------------------------------------------


def test_a_robot_fault_mid_recipe_leaves_the_inventory_as_it_really_is(
    noisy_deck: Deck, no_threads_left: None
) -> None:
    recipe = recipe_for(noisy_deck)
    first = recipe.transfers[0]
    chatterbox = JammingChatterbox(n=2)
    robot = PyLabRobotBackend(noisy_deck, chatterbox, errors=PipettingErrorModel(seed=3))
    try:
        lh = LiquidHandler(robot, noisy_deck, name="lh")
        status = lh.set(recipe)
        with pytest.raises(BackendError, match=r"clot detected during aspiration \(error 74\)"):
            status.wait(30)
        assert chatterbox.received == [
            "pick_up_tips",
            "aspirate",
            "dispense",
            "drop_tips",
            "pick_up_tips",
            "aspirate (failed)",
        ]
        # the first transfer happened, the second picked up its tip and drew nothing
        moved = next(s.volume_ul for s in lh.steps if s.command == "aspirate")
        assert moved is not None
        assert lh.deck.well(recipe.destination).volume_ul == pytest.approx(moved)
        assert lh.deck.stock(first.source).volume_ul == pytest.approx(
            noisy_deck.stock(first.source).volume_ul - moved
        )
        assert sum(noisy_deck.tips_left(t) - lh.deck.tips_left(t) for t in ("tip_300ul", "tip_1000ul")) == 2
        assert_trackers_agree(robot, lh.deck)
    finally:
        robot.close()
    assert not robot.loop_thread.is_alive()
    with pytest.raises(BackendError, match="closed"):
        robot.drop_tip("p300")


def test_a_robot_that_does_not_come_up_is_a_backend_error_and_leaves_no_thread(
    water_deck: Deck, no_threads_left: None
) -> None:
    with pytest.raises(BackendError, match=r"10\.0\.0\.7 does not answer"):
        PyLabRobotBackend(water_deck, FailingSetupChatterbox())


# -- choosing the robot -------------------------------------------------------------------------


def test_an_unknown_backend_name_is_a_typed_error_before_anything_runs(
    water_deck: Deck, no_threads_left: None
) -> None:
    threads = threading.active_count()
    with pytest.raises(UnknownRobotBackendError, match="no robot backend named 'hamilton'") as info:
        PyLabRobotBackend(water_deck, "hamilton")
    assert all(name in str(info.value) for name in BACKENDS)
    assert threading.active_count() == threads


def test_options_the_backend_does_not_take_are_a_typed_error(water_deck: Deck) -> None:
    with pytest.raises(RobotBackendConfigError, match="num_chanels"):
        PyLabRobotBackend(water_deck, "chatterbox", backend_options={"num_chanels": 2})


def test_a_backend_is_chosen_by_name_and_options(water_deck: Deck) -> None:
    with PyLabRobotBackend(water_deck, "chatterbox", backend_options={"num_channels": 2}) as robot:
        assert isinstance(robot.robot, LiquidHandlerChatterboxBackend)
        assert robot.robot.num_channels == 2
    with pytest.raises(DeckTranslationError, match="1 channel"):
        PyLabRobotBackend(water_deck, "chatterbox", backend_options={"num_channels": 1})


def test_an_unreachable_ot2_is_a_typed_error_before_any_motion(no_threads_left: None) -> None:
    deck = load_deck_file(EXAMPLE_DECKS / "saxs_lab.yaml")
    # without opentrons-http-api-client the backend cannot be made; with it, nothing answers on port 9
    with pytest.raises((RobotBackendConfigError, BackendError)):
        PyLabRobotBackend(
            deck, "opentrons_ot2", backend_options={"host": "127.0.0.1", "port": 9}, timeout_s=20
        )


def test_two_ot2s_in_one_process_each_get_their_own_commands(no_threads_left: None) -> None:
    """ot_api points at one robot at a time (module globals); the backend re-points it per call."""
    deck = load_deck_file(EXAMPLE_DECKS / "saxs_lab.yaml")
    pipettes = {"left": "p300_single_gen2", "right": "p1000_single_gen2"}
    with OT2Simulator(**pipettes) as first, OT2Simulator(**pipettes) as second:
        options = [{"host": sim.host, "port": sim.port} for sim in (first, second)]
        with (
            PyLabRobotBackend(deck, "opentrons_ot2", backend_options=options[0], timeout_s=30) as a,
            PyLabRobotBackend(deck, "opentrons_ot2", backend_options=options[1], timeout_s=30) as b,
        ):
            a.pick_up_tip("p300", "10")
            b.pick_up_tip("p1000", "11")
            a.aspirate("p300", "water", 150.0)
            a.dispense("p300", "4/A1", 150.0)
            a.drop_tip("p300")
            b.drop_tip("p1000")
        on_first = [c.command_type for c in first.commands() if c.command_type != "loadLabware"]
        on_second = [c.command_type for c in second.commands() if c.command_type != "loadLabware"]
    assert on_first.count("pickUpTip") == on_second.count("pickUpTip") == 1
    assert on_first.count("aspirateInPlace") == 1
    assert on_second.count("aspirateInPlace") == 0
    assert on_first.count("dropTipInPlace") == on_second.count("dropTipInPlace") == 1


# -- the OT-2's deck ----------------------------------------------------------------------------


def test_a_recipe_through_the_ot2_backend_logic(no_threads_left: None) -> None:
    deck = load_deck_file(EXAMPLE_DECKS / "saxs_lab.yaml")
    recipe = recipe_for(deck)
    with PyLabRobotBackend(deck, "opentrons_ot2_chatterbox", backend_options=OT2_PIPETTES) as robot:
        lh = LiquidHandler(robot, deck, name="lh")
        lh.set(recipe).wait(30)
        calls = [name for name, _, _ in robot.robot.commands]
        aspirated = [kw["volume"] for name, _, kw in robot.robot.commands if name == "lh.aspirate_in_place"]
        assert_trackers_agree(robot, lh.deck)
    assert calls.count("lh.pick_up_tip") == calls.count("lh.drop_tip_in_place") == len(recipe.transfers)
    assert aspirated == pytest.approx([t.volume_ul for t in recipe.transfers])


def test_a_deck_the_ot2_cannot_hold_is_refused_before_anything_runs(
    water_deck: Deck, no_threads_left: None
) -> None:
    with pytest.raises(DeckTranslationError, match="not on an OT-2 deck"):
        PyLabRobotBackend(water_deck, "opentrons_ot2_chatterbox", backend_options=OT2_PIPETTES)


def test_stocks_in_a_plates_wells_share_the_plate_with_mixing_wells(no_threads_left: None) -> None:
    stocks = [
        dataclasses.replace(stock, slot=f"3/A{i + 1}", capacity_ul=20000.0)
        for i, stock in enumerate(water_stocks())
    ]
    wells = [Well("3/B1", 2000.0, 20.0), Well("7", 5000.0)]
    deck = make_deck(stocks, wells=wells)
    recipe = dataclasses.replace(recipe_for(deck), destination="7")
    recipe = dataclasses.replace(
        recipe, transfers=tuple(dataclasses.replace(t, destination="7") for t in recipe.transfers)
    )
    with PyLabRobotBackend(deck) as robot:
        plate = robot.plr_deck.containers["water"].parent
        assert plate is robot.plr_deck.containers["3/B1"].parent
        assert robot.plr_deck.containers["7"].parent is robot.plr_deck.deck
        lh = LiquidHandler(robot, deck, name="lh")
        lh.set(recipe).wait(30)
        assert_trackers_agree(robot, lh.deck)
        assert robot.plr_deck.volume_ul("7") == pytest.approx(1000.0)


# -- standard labware ------------------------------------------------------------------------------


def test_standard_labware_named_for_a_slot_is_pylabrobots_own(no_threads_left: None) -> None:
    deck = load_deck_file(EXAMPLE_DECKS / "saxs_lab.yaml")
    labware = {"4": "cor_cos_24_wellplate_3470uL_Fb", "10": "hamilton_96_tiprack_300uL"}
    with PyLabRobotBackend(deck, labware=labware) as robot:
        assert robot.plr_deck.containers["4/B3"].max_volume == pytest.approx(3400.0)
        assert robot.plr_deck.tip_racks["10"].get_item("A1").get_tip().maximal_volume == 400
        lh = LiquidHandler(robot, deck, name="lh")
        lh.set(recipe_for(deck)).wait(30)
        assert_trackers_agree(robot, lh.deck)


def saxs_deck_data(**labware: str) -> dict[str, Any]:
    """The SAXS example deck file's data, with `labware` named for entries (`plates_0=...`)."""
    data: dict[str, Any] = yaml.safe_load((EXAMPLE_DECKS / "saxs_lab.yaml").read_text())
    for key, name in labware.items():
        section, index = key.rsplit("_", 1)
        data[section][int(index)]["labware"] = name
    return data


def test_a_deck_file_names_standard_labware_for_its_slots(no_threads_left: None) -> None:
    data = saxs_deck_data(plates_0="cor_cos_24_wellplate_3470uL_Fb", tip_racks_0="hamilton_96_tiprack_300uL")
    deck = parse_deck_data(data).to_deck()
    assert deck.labware_by_slot == {"10": "hamilton_96_tiprack_300uL", "4": "cor_cos_24_wellplate_3470uL_Fb"}
    with PyLabRobotBackend(deck) as robot:
        assert robot.plr_deck.containers["4/A1"].max_volume == pytest.approx(3400.0)
        assert robot.plr_deck.tip_racks["10"].model == "hamilton_96_tiprack_300uL"
        # the caller's choice for a slot wins over the file's
    with PyLabRobotBackend(deck, labware={"4": "cor_axy_24_wellplate_10mL_Vb"}) as robot:
        assert robot.plr_deck.containers["4/A1"].max_volume > 10000


def test_a_deck_file_naming_two_labware_for_one_slot_is_refused() -> None:
    data = saxs_deck_data(plates_0="cor_cos_24_wellplate_3470uL_Fb")
    data["stocks"][0]["slot"] = "4/E1"  # a stock in the plate's slot, naming another plate
    data["stocks"][0]["labware"] = "cellvis_24_wellplate_3600uL_Fb"
    with pytest.raises(DeckFileError, match="for slot '4', but stocks") as info:
        parse_deck_data(data).to_deck()
    assert "'cellvis_24_wellplate_3600uL_Fb'" in str(info.value)


def test_labware_for_a_slot_that_holds_nothing_is_refused(water_deck: Deck) -> None:
    with pytest.raises(DeckError, match="slot '12', which holds nothing"):
        dataclasses.replace(water_deck, labware=(("12", "hamilton_96_tiprack_300uL"),))


@pytest.mark.parametrize(
    ("labware", "message"),
    [
        ({"4": "cor_96_wellplate_360uL_Fb"}, "only 360 µL"),
        ({"4": "no_such_plate"}, "defines no labware 'no_such_plate'"),
        ({"10": "cor_cos_24_wellplate_3470uL_Fb"}, "is a Plate, but the deck puts a TipRack there"),
        ({"7": "hamilton_96_tiprack_300uL"}, "hold nothing on the deck"),
    ],
)
def test_labware_that_cannot_hold_the_deck_is_refused(labware: dict[str, str], message: str) -> None:
    deck = load_deck_file(EXAMPLE_DECKS / "saxs_lab.yaml")
    with pytest.raises(DeckTranslationError, match=message):
        PyLabRobotBackend(deck, labware=labware)
