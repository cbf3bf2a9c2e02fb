"""Hamilton and Tecan robots through PyLabRobot: their decks of rails, the STAR's own logic, no mocks.

The STAR runs here as PyLabRobot's software STAR (`hamilton_star_chatterbox`): the
STAR backend's firmware logic, its commands logged instead of sent over USB. The
Vantage and the EVO have no software twin in PyLabRobot, and no USB robot is on
this machine: for them, what can be checked without the robot is checked (the
backend is made, the deck file is placed, the robot that is not there is a typed
error before any motion).
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import pytest
from fixtures_deck import make_deck, water_stocks
from plr_checks import assert_trackers_agree, loop_threads, recipe_for
from pylabrobot.liquid_handling.backends.hamilton.STAR_backend import (
    STARBackend,
    star_firmware_string_to_error,
)
from pylabrobot.liquid_handling.backends.hamilton.STAR_chatterbox import STARChatterboxBackend
from pylabrobot.liquid_handling.backends.hamilton.vantage_backend import VantageBackend
from pylabrobot.liquid_handling.backends.tecan.EVO_backend import EVOBackend
from pylabrobot.resources.hamilton import HamiltonTip
from pylabrobot.resources.tecan import TecanTip

from tandem.robots.deck import Deck, Well
from tandem.robots.liquid_handler import BackendError, LiquidHandler
from tandem.robots.pipetting_model import PipettingErrorModel
from tandem.robots.pylabrobot_backend import PyLabRobotBackend
from tandem.robots.pylabrobot_deck import build_plr_deck
from tandem.robots.pylabrobot_deck_kinds import DeckTranslationError
from tandem.robots.pylabrobot_registry import BACKENDS, deck_kind_for, make_plr_backend

pytestmark = pytest.mark.timeout(60)

TECAN_PLATE = {"3": "Microplate_24_Well"}  # Tecan's 24-well plate: 24 wells of 5.3 mL


class RecordingSTAR(STARChatterboxBackend):  # type: ignore[misc]
    """PyLabRobot's software STAR that also keeps the firmware commands it would have sent."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sent: list[str] = []

    async def _write_and_read_command(self, id_: Any, cmd: str, *args: Any, **kwargs: Any) -> Any:
        self.sent.append(cmd[:4])  # module and command, e.g. "C0AS" (aspirate)
        return await super()._write_and_read_command(id_, cmd, *args, **kwargs)


class ClottingSTAR(RecordingSTAR):
    """The software STAR answering its second aspiration as a STAR does a clot: firmware error 04."""

    async def _write_and_read_command(self, id_: Any, cmd: str, *args: Any, **kwargs: Any) -> Any:
        if cmd.startswith("C0AS") and self.sent.count("C0AS") == 1:
            self.sent.append("C0AS (clot)")
            raise star_firmware_string_to_error({"C0": "04/00"}, raw_response=f"{cmd[:10]}er04/00")
        return await super()._write_and_read_command(id_, cmd, *args, **kwargs)


@pytest.fixture
def plate_stocks_deck() -> Deck:
    """The SAXS stocks in the wells of one plate (slot 3, row A), mixing wells in its row B."""
    stocks = [
        dataclasses.replace(s, slot=f"3/A{i + 1}", volume_ul=4500.0, capacity_ul=5000.0)
        for i, s in enumerate(water_stocks())
    ]
    return make_deck(stocks, wells=[Well(f"3/B{i}", 2000.0, 20.0) for i in range(1, 7)])


@pytest.fixture
def nothing_left_running() -> Any:
    before = set(threading.enumerate())
    yield
    assert not loop_threads()
    assert set(threading.enumerate()) <= before


# -- the STAR's own logic, end to end ---------------------------------------------------------


def test_a_recipe_through_pylabrobots_software_star(saxs_deck: Deck, nothing_left_running: None) -> None:
    recipe = recipe_for(saxs_deck)
    errors = PipettingErrorModel(seed=7)
    with PyLabRobotBackend(saxs_deck, "hamilton_star_chatterbox", errors=errors) as robot:
        assert isinstance(robot.robot, STARChatterboxBackend)
        lh = LiquidHandler(robot, saxs_deck, name="lh")
        lh.set(recipe).wait(30)
        assert_trackers_agree(robot, lh.deck)
        assert 0 < lh.realized().max_abs_difference(recipe.target) < 0.01
        assert not any(tracker.has_tip for tracker in robot.lh.head.values())


def test_the_star_gets_a_firmware_command_for_each_step(saxs_deck: Deck) -> None:
    star = RecordingSTAR()
    recipe = recipe_for(saxs_deck)
    with PyLabRobotBackend(saxs_deck, star) as robot:
        assert robot.plr_deck.kind == "hamilton_star"
        lh = LiquidHandler(robot, saxs_deck, name="lh")
        lh.set(recipe).wait(30)
        assert_trackers_agree(robot, lh.deck)
    # C0TT defines a tip type the first time one is used; then pick up, aspirate, dispense, discard
    steps = [c for c in star.sent if c != "C0TT"]
    assert steps == ["C0TP", "C0AS", "C0DS", "C0TR"] * len(recipe.transfers)


def test_a_firmware_error_mid_recipe_leaves_the_inventory_and_the_trackers_agreeing(
    saxs_deck: Deck, nothing_left_running: None
) -> None:
    star = ClottingSTAR()
    recipe = recipe_for(saxs_deck)
    with PyLabRobotBackend(saxs_deck, star, errors=PipettingErrorModel(seed=3)) as robot:
        lh = LiquidHandler(robot, saxs_deck, name="lh")
        with pytest.raises(BackendError, match="ClotDetectedError") as info:
            lh.set(recipe).wait(30)
        assert "aspirate" in str(info.value)
        steps = [c for c in star.sent if c != "C0TT"]
        assert steps == ["C0TP", "C0AS", "C0DS", "C0TR", "C0TP", "C0AS (clot)"]
        # the first transfer happened; the second drew nothing, and both records say so
        moved = next(s.volume_ul for s in lh.steps if s.command == "aspirate")
        assert lh.deck.well(recipe.destination).volume_ul == pytest.approx(moved)
        assert_trackers_agree(robot, lh.deck)


def test_an_infeasible_recipe_sends_the_star_no_command(saxs_deck: Deck) -> None:
    drained = saxs_deck.with_stock_volume("sds_100", 600.0)
    star = RecordingSTAR()
    with PyLabRobotBackend(drained, star) as robot:
        star.sent.clear()
        with pytest.raises(Exception, match="sds_100"):
            LiquidHandler(robot, drained, name="lh").set(recipe_for(drained))
        assert star.sent == []
        assert_trackers_agree(robot, drained)


# -- the deck of rails ----------------------------------------------------------------------------


def test_a_deck_file_stands_on_hamilton_carriers(saxs_deck: Deck) -> None:
    plr = build_plr_deck(saxs_deck, kind="hamilton_starlet")
    where = {slot: (p.model, p.rails, p.site) for slot, p in plr.placements.items()}
    assert where == {
        "10": ("TIP_CAR_480_A00", 1, 0),
        "11": ("TIP_CAR_480_A00", 1, 1),
        "1": ("hamilton_tube_carrier_12_b00", 7, 0),
        "2": ("hamilton_tube_carrier_12_b00", 7, 1),
        "3": ("hamilton_tube_carrier_12_b00", 7, 2),
        "5": ("hamilton_tube_carrier_12_b00", 7, 3),
        "4": ("PLT_CAR_L5AC_A00", 9, 0),
    }
    assert str(plr.placements["4"]) == "PLT_CAR_L5AC_A00 on rails 9-14, site 0 (from the front)"
    # Hamilton's own racks of the smallest tips that hold each pipette's largest volume
    assert plr.tip_racks["10"].model == "hamilton_96_tiprack_300uL"
    assert plr.tip_racks["11"].model == "hamilton_96_tiprack_1000uL"
    assert isinstance(plr.tip_racks["10"].get_item("A1").get_tip(), HamiltonTip)
    assert plr.deck.get_trash_area() is not None


def test_a_deck_file_with_more_slots_than_a_starlet_has_rails_is_refused_naming_the_star() -> None:
    # 21 plates need five 5-plate carriers and a sixth: 36 rails with the tips and tubes
    wells = [Well(f"{i}/A1", 2000.0, 20.0) for i in range(20, 41)]
    deck = make_deck(water_stocks(), wells=wells)
    with pytest.raises(DeckTranslationError, match=r"rails 1-30 \(30\) are free") as info:
        build_plr_deck(deck, kind="hamilton_starlet")
    assert "Hamilton STAR (hamilton_star, rails 1-54)" in str(info.value)
    assert len(build_plr_deck(deck, kind="hamilton_star").placements) == 21 + 4 + 2  # plates, vials, racks


def test_a_deck_the_star_cannot_hold_is_refused_before_the_robot_is_touched(
    nothing_left_running: None,
) -> None:
    wells = [Well(f"{i}/A1", 2000.0, 20.0) for i in range(100, 146)]  # ten plate carriers: 60 rails
    deck = make_deck(water_stocks(), wells=wells)
    star = RecordingSTAR()
    with pytest.raises(DeckTranslationError, match="do not fit on a Hamilton STAR"):
        PyLabRobotBackend(deck, star)
    assert star.sent == []
    assert not star.setup_finished


@pytest.mark.parametrize(
    ("labware", "message"),
    [
        # a 37 × 118 mm trough as one slot's vessel: no tube carrier's site holds it
        ({"1": "hamilton_1_trough_200mL_Vb"}, r"wider than any Hamilton tube carrier's site"),
        # Tecan's tips on a Hamilton
        ({"10": "DiTi_200ul_SBS_LiHa"}, "picks up Hamilton tips only"),
    ],
)
def test_labware_a_hamilton_carrier_cannot_hold_is_refused(
    saxs_deck: Deck, labware: dict[str, str], message: str
) -> None:
    with pytest.raises(DeckTranslationError, match=message):
        PyLabRobotBackend(saxs_deck, "hamilton_star_chatterbox", labware=labware)


def test_a_plate_wider_than_a_plate_carriers_site_is_refused() -> None:
    deck = make_deck(water_stocks(), wells=[Well("4/A1", 1000.0, 20.0)])
    with pytest.raises(DeckTranslationError, match=r"151.6 × 131.1 mm, but a PLT_CAR_L5AC_A00 site"):
        build_plr_deck(deck, kind="hamilton_star", labware={"4": "Macherey_Nagel_Plate_96_Well"})


def test_a_pipette_larger_than_hamiltons_tips_is_refused(saxs_deck: Deck) -> None:
    big = dataclasses.replace(saxs_deck.pipettes[1], max_volume_ul=2000.0)
    deck = dataclasses.replace(saxs_deck, pipettes=(saxs_deck.pipettes[0], big))
    with pytest.raises(DeckTranslationError, match="no Hamilton 96-rack tip holds 2000 µL"):
        build_plr_deck(deck, kind="hamilton_vantage")


def test_a_vantage_deck_places_the_same_deck_file(saxs_deck: Deck) -> None:
    plr = build_plr_deck(saxs_deck, kind="hamilton_vantage")
    assert plr.placements["4"].model == "PLT_CAR_L5AC_A00"
    assert type(plr.deck).__name__ == "VantageDeck"


# -- the Tecan EVO 150 ------------------------------------------------------------------------------


def test_a_deck_file_in_tecan_labware_stands_on_tecan_carriers(plate_stocks_deck: Deck) -> None:
    plr = build_plr_deck(plate_stocks_deck, kind="tecan_evo150", labware=TECAN_PLATE)
    assert {s: (p.model, p.rails, p.site) for s, p in plr.placements.items()} == {
        "rack-tip_1000ul": ("DiTi_3Pos", 2, 0),
        "rack-tip_300ul": ("DiTi_3Pos", 2, 1),
        "3": ("MP_3Pos", 8, 0),
    }
    assert plr.tip_racks["rack-tip_300ul"].model == "DiTi_200ul_SBS_LiHa"
    assert isinstance(plr.tip_racks["rack-tip_1000ul"].get_item("A1").get_tip(), TecanTip)
    assert plr.volume_ul("water") == 4500.0
    assert plr.deck.get_trash_area().name == "trash"  # the wash station's waste, where tips go


def test_vials_on_an_evo_are_refused_naming_the_tecan_plates_that_would_hold_them(saxs_deck: Deck) -> None:
    with pytest.raises(DeckTranslationError, match="Tecan plates only") as info:
        PyLabRobotBackend(saxs_deck, "tecan_evo")
    assert "split the stock" in str(info.value) or "Microplate_24_Well" in str(info.value)


def test_a_generic_plate_on_an_evo_is_refused_naming_tecan_plates(plate_stocks_deck: Deck) -> None:
    with pytest.raises(DeckTranslationError, match=r"slot '3' holds a plate .* Microplate_24_Well"):
        build_plr_deck(plate_stocks_deck, kind="tecan_evo150")


# -- robots on USB, which are not here ------------------------------------------------------------


@pytest.mark.parametrize("name", ["hamilton_star", "hamilton_starlet", "hamilton_vantage", "tecan_evo"])
def test_a_robot_that_is_not_connected_is_a_backend_error_before_any_motion_and_leaves_no_thread(
    name: str, saxs_deck: Deck, plate_stocks_deck: Deck, nothing_left_running: None
) -> None:
    deck, labware = (plate_stocks_deck, TECAN_PLATE) if name == "tecan_evo" else (saxs_deck, None)
    # without pyusb PyLabRobot says to install it; with it, that no USB device answers
    with pytest.raises(BackendError, match=r"setting up the robot .*(?i:usb)"):
        PyLabRobotBackend(deck, name, labware=labware, timeout_s=30)


@pytest.mark.parametrize(
    ("name", "cls", "kind"),
    [
        ("hamilton_star", STARBackend, "hamilton_star"),
        ("hamilton_starlet", STARBackend, "hamilton_starlet"),
        ("hamilton_star_chatterbox", STARChatterboxBackend, "hamilton_star"),
        ("hamilton_vantage", VantageBackend, "hamilton_vantage"),
        ("tecan_evo", EVOBackend, "tecan_evo150"),
    ],
)
def test_the_new_backends_are_made_by_name_without_connecting(name: str, cls: type, kind: str) -> None:
    robot, deck_kind = make_plr_backend(name)
    assert type(robot) is cls
    assert deck_kind == kind == BACKENDS[name].deck_kind
    assert deck_kind_for(robot) == ("hamilton_star" if cls is STARBackend else kind)


def test_backend_options_reach_the_software_star(saxs_deck: Deck, nothing_left_running: None) -> None:
    with PyLabRobotBackend(
        saxs_deck, "hamilton_star_chatterbox", backend_options={"num_channels": 2}
    ) as robot:
        assert robot.robot.num_channels == 2
    # the p1000 goes on channel 1, which a one-channel STAR lacks: refused once the STAR is up
    with pytest.raises(DeckTranslationError, match="1 channel"):
        PyLabRobotBackend(saxs_deck, "hamilton_star_chatterbox", backend_options={"num_channels": 1})


def test_the_terminal_shows_nothing_of_the_software_star(
    saxs_deck: Deck, capfd: pytest.CaptureFixture[str]
) -> None:
    # tip racks on a tip carrier stand high enough for PyLabRobot's deck to warn: that goes to the log
    with PyLabRobotBackend(saxs_deck, "hamilton_star_chatterbox") as robot:
        LiquidHandler(robot, saxs_deck, name="lh").set(recipe_for(saxs_deck)).wait(30)
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
