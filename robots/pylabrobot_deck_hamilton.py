"""tandem's deck files on Hamilton decks (STARlet, STAR, Vantage): labware on Hamilton carriers on rails.

A Hamilton deck is a row of rails 22.5 mm apart; labware stands on carriers, each a
few rails wide with sites from front to back. A deck file names slots, not rails,
so each slot's labware goes on a site of a carrier of its kind
(`tandem.robots.pylabrobot_deck_kinds.place_on_rails`), carriers standing left to
right from rail 1, tip carriers first, then tube carriers, then plate carriers:

* tip racks: `TIP_CAR_480_A00`, five 96-tip racks, 6 rails;
* a slot holding one vessel (a stock's vial): `hamilton_tube_carrier_12_b00`,
  twelve tubes up to 29 mm across (a 20 mL vial, a 50 mL Falcon tube), 2 rails;
  a vessel up to 18 mm goes on `Tube_CAR_24_A00`, 24 tubes, 1 rail;
* plates: `PLT_CAR_L5AC_A00`, five SBS plates, 6 rails.

`PlrDeck.placements` says where each slot landed: the real deck is loaded to match.
On a STARlet or STAR the last two rails hold the waste block (tip waste, teaching
rack, CO-RE grippers), so rails 1-30 or 1-54 are free; on the 1.3 m Vantage, 1-54.

The STAR and Vantage pick up Hamilton tips only (`HamiltonTip`: the firmware needs
each tip's size and pick-up method), so a tip rack with no labware named is
Hamilton's 96-tip rack of the smallest tip that holds the pipette's largest volume,
and a rack named in the deck file must hold Hamilton tips.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pylabrobot.resources import Plate, TipRack
from pylabrobot.resources import hamilton as plr_hamilton
from pylabrobot.resources.hamilton import HamiltonDeck, HamiltonTip, STARDeck, STARLetDeck, VantageDeck

from tandem.robots.pylabrobot_deck_kinds import (
    CarrierKind,
    DeckKind,
    DeckTranslationError,
    Placement,
    place_on_rails,
    vendor_tip_rack,
)

#: Hamilton's standard 96-tip racks by their tips' nominal volume (µL), smallest first
HAMILTON_TIP_RACKS: tuple[tuple[float, str], ...] = (
    (10.0, "hamilton_96_tiprack_10uL"),
    (50.0, "hamilton_96_tiprack_50uL"),
    (300.0, "hamilton_96_tiprack_300uL"),
    (1000.0, "hamilton_96_tiprack_1000uL"),
)
HAMILTON_DECK_KINDS: tuple[DeckKind, ...] = ("hamilton_starlet", "hamilton_star", "hamilton_vantage")

_RAIL_PITCH_MM = 22.5
_TIPS = CarrierKind("TIP_CAR_480_A00", plr_hamilton.TIP_CAR_480_A00, "tip racks")
_PLATES = CarrierKind("PLT_CAR_L5AC_A00", plr_hamilton.PLT_CAR_L5AC_A00, "SBS plates")
#: tube carriers, smallest sites first: a vessel goes on the first whose site it fits
_TUBES = (
    CarrierKind("Tube_CAR_24_A00", plr_hamilton.Tube_CAR_24_A00, "tubes up to 18 mm"),
    CarrierKind(
        "hamilton_tube_carrier_12_b00", plr_hamilton.hamilton_tube_carrier_12_b00, "tubes up to 29 mm"
    ),
)
# (robot, deck, free rails) of each kind; the waste block stands on a STAR(let)'s last two rails
_DECKS: Mapping[str, tuple[str, Any, tuple[int, int]]] = {
    "hamilton_starlet": ("Hamilton STARlet", STARLetDeck, (1, 30)),
    "hamilton_star": ("Hamilton STAR", STARDeck, (1, 54)),
    "hamilton_vantage": ("Hamilton Vantage 1.3 m", lambda: VantageDeck(size=1.3), (1, 54)),
}


def hamilton_tip_rack(slot: str, tip_type: str, n_tips: int, capacity_ul: float) -> TipRack:
    """Hamilton's 96-tip rack whose tips hold `capacity_ul` (a pipette's largest volume)."""
    rack: TipRack = vendor_tip_rack(
        slot,
        tip_type,
        n_tips,
        capacity_ul,
        vendor="Hamilton 96-rack",
        racks=HAMILTON_TIP_RACKS,
        definitions=plr_hamilton,
        hint=" (name a 24-rack of 4 or 5 mL tips as the slot's labware)",
    )
    return rack


def hamilton_deck(kind: DeckKind, placed: Mapping[str, Any]) -> tuple[HamiltonDeck, dict[str, Placement]]:
    """The Hamilton deck of `kind` with each slot's labware on a carrier; where each slot landed."""
    robot, make_deck, rails = _DECKS[kind]
    tips, tubes, plates = [], [], []
    for slot, labware in placed.items():
        if isinstance(labware, TipRack):
            _check_hamilton_tips(slot, labware)
            tips.append((slot, labware, _TIPS))
        elif isinstance(labware, Plate):
            plates.append((slot, labware, _PLATES))
        else:
            tubes.append((slot, labware, _tube_carrier(slot, labware)))
    deck = make_deck()
    # the deck kinds are named as the robots a profile names (`hamilton_star`, ...)
    larger = ", ".join(
        f"{name} ({other}, rails {free[0]}-{free[1]})"
        for other, (name, _, free) in _DECKS.items()
        if free[1] - free[0] > rails[1] - rails[0]
    )
    placements = place_on_rails(
        deck,
        robot=robot,
        slots=[*tips, *tubes, *plates],
        rails=rails,
        rail_pitch_mm=_RAIL_PITCH_MM,
        assign=lambda deck, carrier, rail: deck.assign_child_resource(carrier, rails=rail),
        larger=f"a larger deck: {larger}" if larger else "a second robot",
    )
    return deck, placements


def _check_hamilton_tips(slot: str, rack: TipRack) -> None:
    spots = rack.get_all_items()
    if spots and not isinstance(spots[0].make_tip(), HamiltonTip):
        names = ", ".join(name for _, name in HAMILTON_TIP_RACKS)
        raise DeckTranslationError(
            f"tip rack {slot!r}: {rack.model or rack.name!r} holds {type(spots[0].make_tip()).__name__}s, "
            f"but a Hamilton robot picks up Hamilton tips only; name a Hamilton rack ({names}) "
            "or none, and tandem chooses one"
        )


def _tube_carrier(slot: str, vessel: Any) -> CarrierKind:
    """The tube carrier with the smallest sites that hold `vessel`."""
    x, y = float(vessel.get_size_x()), float(vessel.get_size_y())
    for kind in _TUBES:
        site = kind.make("probe").sites[0]
        if x <= site.get_size_x() and y <= site.get_size_y():
            return kind
    options = "; ".join(f"{k.model}: {k.holds}" for k in _TUBES)
    raise DeckTranslationError(
        f"slot {slot!r}: {x:g} × {y:g} mm is wider than any Hamilton tube carrier's site ({options}); "
        "put the stock in a plate's wells (slot '<plate>/A1') or name a smaller vessel"
    )


__all__ = ["HAMILTON_DECK_KINDS", "HAMILTON_TIP_RACKS", "hamilton_deck", "hamilton_tip_rack"]
