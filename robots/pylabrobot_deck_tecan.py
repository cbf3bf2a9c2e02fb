"""tandem's deck files on a Tecan EVO 150: Tecan labware on Tecan carriers on rails.

PyLabRobot's `EVOBackend` pipettes in Tecan labware only: it takes the pipetting
arm's z heights (`z_start`, `z_dispense`, `z_max`) and a well's area from a
`TecanPlate` or `TecanTipRack`, and picks up `TecanTip`s. Those heights are
calibration, not something tandem can make up for a generic plate, so:

* tip racks: with no labware named, Tecan's LiHa rack (`DiTi_50ul_SBS_LiHa`,
  `DiTi_200ul_SBS_LiHa`, `DiTi_1000ul_SBS_LiHa`) of the smallest tip that holds
  the pipette's largest volume; carrier `DiTi_3Pos` (3 racks, 6 rails);
* plates: the Tecan plate the deck file names for the slot (`labware:
  Microplate_24_Well`); carrier `MP_3Pos` (3 plates, 6 rails);
* a slot that holds one vessel (a stock's vial) is refused: PyLabRobot has no
  Tecan tube carrier and the backend aspirates from Tecan plates only, so stocks
  go in a Tecan plate's wells (`slot: "3/A1"`).

Carriers stand left to right from rail 2, tip carriers first (the layout rules are
`tandem.robots.pylabrobot_deck_kinds.place_on_rails`). Rail 1 holds the wash
station, as on PyLabRobot's `EVO150Deck`, with its waste named "trash": that is
where PyLabRobot's `discard_tips` drops a tip.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from pylabrobot.resources import Coordinate, Plate, TipRack
from pylabrobot.resources.tecan import (
    DiTi_3Pos,
    MP_3Pos,
    TecanDeck,
    TecanPlate,
    TecanTip,
    TecanTipRack,
    Wash_Station,
    Wash_Station_Cleaner_deep,
    Wash_Station_Cleaner_shallow,
    Wash_Station_Waste,
)
from pylabrobot.resources.tecan import plates as tecan_plates
from pylabrobot.resources.tecan import tip_racks as tecan_tip_racks
from pylabrobot.resources.tecan.tecan_decks import (
    EVO150_NUM_RAILS,
    EVO150_SIZE_X,
    EVO150_SIZE_Y,
    EVO150_SIZE_Z,
)

from tandem.robots.pylabrobot_deck_kinds import (
    CarrierKind,
    DeckTranslationError,
    Placement,
    place_on_rails,
    vendor_tip_rack,
)

#: Tecan's LiHa disposable-tip racks by their tips' nominal volume (µL), smallest first
TECAN_TIP_RACKS: tuple[tuple[float, str], ...] = (
    (50.0, "DiTi_50ul_SBS_LiHa"),
    (200.0, "DiTi_200ul_SBS_LiHa"),
    (1000.0, "DiTi_1000ul_SBS_LiHa"),
)

_RAIL_PITCH_MM = 25.0
_FREE_RAILS = (2, EVO150_NUM_RAILS)  # rail 1: the wash station
# EVOware's labware sizes include rims that overhang a carrier's 127 mm site: Tecan's own
# Microplate_24_Well is 130.9 mm wide and sits in MP_3Pos
_TECAN_PLAY_MM = 4.5
_TIPS = CarrierKind("DiTi_3Pos", DiTi_3Pos, "tip racks", _TECAN_PLAY_MM)
_PLATES = CarrierKind("MP_3Pos", MP_3Pos, "plates", _TECAN_PLAY_MM)


def tecan_tip_rack(slot: str, tip_type: str, n_tips: int, capacity_ul: float) -> TipRack:
    """Tecan's 96-tip LiHa rack whose tips hold `capacity_ul` (a pipette's largest volume)."""
    rack: TipRack = vendor_tip_rack(
        slot,
        tip_type,
        n_tips,
        capacity_ul,
        vendor="Tecan LiHa",
        racks=TECAN_TIP_RACKS,
        definitions=tecan_tip_racks,
    )
    return rack


def evo150_deck(
    placed: Mapping[str, Any], capacities_ul: Mapping[str, float]
) -> tuple[TecanDeck, dict[str, Placement]]:
    """An EVO 150 deck with each slot's labware on a Tecan carrier; where each slot landed.

    `capacities_ul` gives each slot's largest well (or vessel), for naming the Tecan
    plates that would hold it when a slot's labware is not Tecan's.
    """
    tips, plates = [], []
    for slot, labware in placed.items():
        if isinstance(labware, TipRack):
            spots = labware.get_all_items()
            if not isinstance(labware, TecanTipRack) or (
                spots and not isinstance(spots[0].make_tip(), TecanTip)
            ):
                names = ", ".join(name for _, name in TECAN_TIP_RACKS)
                raise DeckTranslationError(
                    f"tip rack {slot!r}: {labware.model or 'a generic rack'!r} is not a Tecan rack of Tecan "
                    f"tips, which the EVO picks up; name one ({names}) or none, and tandem chooses one"
                )
            tips.append((slot, labware, _TIPS))
        elif isinstance(labware, TecanPlate):
            plates.append((slot, labware, _PLATES))
        else:
            what = "a plate" if isinstance(labware, Plate) else "one vessel (a vial)"
            raise DeckTranslationError(
                f"slot {slot!r} holds {what} that is not a Tecan plate, and PyLabRobot's EVO backend "
                f"pipettes in Tecan plates only; {_tecan_plates_holding(capacities_ul[slot])}"
            )
    deck = _evo150_deck()
    placements = place_on_rails(
        deck,
        robot="Tecan EVO 150",
        slots=[*tips, *plates],
        rails=_FREE_RAILS,
        rail_pitch_mm=_RAIL_PITCH_MM,
        assign=lambda deck, carrier, rail: deck.assign_child_resource(carrier, rails=rail),
        larger="a second robot",
    )
    return deck, placements


def _evo150_deck() -> TecanDeck:
    """PyLabRobot's EVO 150 deck, its wash station's waste named "trash" for `discard_tips`."""
    deck = TecanDeck(
        num_rails=EVO150_NUM_RAILS,
        size_x=EVO150_SIZE_X,
        size_y=EVO150_SIZE_Y,
        size_z=EVO150_SIZE_Z,
        origin=Coordinate(0, 0, 0),
        with_wash_station=False,
    )
    wash = Wash_Station(name="wash_station")
    wash[0] = Wash_Station_Cleaner_deep(name="wash_clean_deep")
    wash[1] = Wash_Station_Waste(name="trash")
    wash[2] = Wash_Station_Cleaner_shallow(name="wash_clean_shallow")
    deck.assign_child_resource(wash, rails=1)
    return deck


def _tecan_plates_holding(capacity_ul: float) -> str:
    """The Tecan plates whose wells hold `capacity_ul`, as advice."""
    holding = []
    for name, make in inspect.getmembers(tecan_plates, inspect.isfunction):
        if make.__module__ != tecan_plates.__name__ or name.endswith("_Lid"):
            continue
        plate = make(name)
        if isinstance(plate, TecanPlate) and plate.get_item(0).max_volume >= capacity_ul:
            holding.append(f"{name} ({plate.num_items} × {plate.get_item(0).max_volume:.0f} µL)")
    if not holding:
        return f"no Tecan plate's wells hold {capacity_ul:g} µL: split the stock over several wells"
    return (
        f"put it in the wells of a Tecan plate named for the slot (labware: ...) whose wells hold "
        f"{capacity_ul:g} µL: {', '.join(holding)}"
    )


__all__ = ["TECAN_TIP_RACKS", "evo150_deck", "tecan_tip_rack"]
