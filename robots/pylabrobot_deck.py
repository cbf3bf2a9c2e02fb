"""tandem's `Deck` as PyLabRobot resources: what a PyLabRobot `LiquidHandler` pipettes on.

Users keep writing tandem deck files; this module builds the PyLabRobot deck from
them. A top-level slot becomes one resource: a stock's vial or a lone mixing well
becomes a `Tube`; the wells named `<slot>/<row><column>` (a deck file's plate, and
stocks placed in a plate's wells) become one `Plate`; a tip rack becomes a
`TipRack`. Where the deck file (or the caller) names a standard labware for a slot
(the name of a definition in `pylabrobot.resources`, e.g. `hamilton_96_tiprack_300uL`
or `cor_cos_24_wellplate_3470uL_Fb`), PyLabRobot's own definition is used and
checked to hold what the deck puts in it; otherwise a generic resource is built
with the deck's capacities.

The deck kinds (`tandem.robots.pylabrobot_deck_kinds`): `"generic"` lays the
slots side by side on a plain PyLabRobot `Deck` with a trash (enough for backends
that do not place labware themselves, such as the chatterbox); `"ot2"` places each
slot in the OT-2's numbered slots (1-11; 12 is the fixed trash), with 96-tip racks
of the OT-2's tip sizes, as `OpentronsOT2Backend` requires; the Hamilton decks
(`tandem.robots.pylabrobot_deck_hamilton`) and the Tecan EVO 150
(`tandem.robots.pylabrobot_deck_tecan`) stand the slots' labware on carriers on
rails, and `PlrDeck.placements` says where each slot went. A deck the chosen
robot's deck cannot hold is a `DeckTranslationError` before anything runs.

The containers' volume trackers start with the deck's volumes and the tip racks'
tip trackers with the deck's unused tips, so PyLabRobot refuses what the robot would.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pylabrobot import resources as plr
from pylabrobot.resources import Container, Coordinate, Plate, TipRack, TipSpot, Trash, Tube, Well
from pylabrobot.resources.opentrons import OTDeck
from pylabrobot.resources.tip import Tip

from tandem.robots.deck import Deck
from tandem.robots.pylabrobot_deck_hamilton import HAMILTON_DECK_KINDS, hamilton_deck, hamilton_tip_rack
from tandem.robots.pylabrobot_deck_kinds import DeckKind, DeckTranslationError, Placement
from tandem.robots.pylabrobot_deck_tecan import evo150_deck, tecan_tip_rack

#: headroom of a generic tip above its pipette's largest volume: real tips hold more than the
#: pipette's nominal range (a 300 µL Hamilton tip holds 400 µL), and a pipetting-error model
#: may draw a little more than was asked for
GENERIC_TIP_HEADROOM = 0.25
#: the tip sizes an OT-2 pipette takes (`OpentronsOT2Backend.can_pick_up_tip`), smallest first
OT2_TIP_VOLUMES_UL = (10.0, 20.0, 200.0, 300.0, 1000.0)
OT2_LABWARE_SLOTS = range(1, 12)  # slot 12 holds the fixed trash

# footprint of one slot's resource, an SBS plate's (mm)
_FOOTPRINT_X, _FOOTPRINT_Y = 127.76, 85.48
_SLOT_PITCH_X = 140.0
# a generic vessel's floor: a robot that aims at a cavity's bottom (the OT-2) needs it
_WALL_MM = 1.0
_WELL_NAME = re.compile(r"^([A-Z]{1,2})([1-9][0-9]*)$")


@dataclass(frozen=True)
class PlrDeck:
    """The PyLabRobot deck built from a tandem deck, and where each tandem name landed.

    `containers` maps every transfer location (stock names and well slots) to its
    PyLabRobot container; `tip_racks` maps each tip rack's slot to its rack;
    `placements`, on a deck of rails, each slot to its carrier site. The PyLabRobot
    objects are live: their trackers change as the robot works.
    """

    deck: plr.Deck
    kind: DeckKind
    containers: Mapping[str, Container]
    tip_racks: Mapping[str, TipRack]
    placements: Mapping[str, Placement] = field(default_factory=dict)

    def volume_ul(self, location: str) -> float:
        """What PyLabRobot's volume tracker holds at a stock or well (committed operations only)."""
        return float(self.containers[location].tracker.volume)

    def tips_left(self, rack_slot: str) -> int:
        """How many tips PyLabRobot's tip trackers see in a rack."""
        return sum(1 for spot in self.tip_racks[rack_slot].get_all_items() if spot.has_tip())


def build_plr_deck(
    deck: Deck, *, kind: DeckKind = "generic", labware: Mapping[str, str] | None = None
) -> PlrDeck:
    """The PyLabRobot deck for `deck`, with trackers filled from it; see the module's docstring.

    The labware is the deck's own (`Deck.labware`, from its deck file) and `labware`,
    which takes precedence slot by slot.
    """
    labware = deck.labware_by_slot | dict(labware or {})
    groups = _slot_groups(deck)
    racks = {r.slot: r for r in deck.tip_racks}
    unknown = sorted(set(labware) - set(groups) - set(racks))
    if unknown:
        raise DeckTranslationError(
            f"labware is named for slot(s) {unknown}, which hold nothing on the deck; "
            f"slots: {', '.join(sorted([*groups, *racks])) or '(none)'}"
        )
    containers: dict[str, Container] = {}
    placed: dict[str, Any] = {}
    for slot, members in groups.items():
        resource, by_location = _vessel(slot, members, labware.get(slot))
        containers.update(by_location)
        placed[slot] = resource
    tip_racks: dict[str, TipRack] = {}
    for slot, rack in racks.items():
        capacity = max((p.max_volume_ul for p in deck.pipettes if p.tip_type == rack.tip_type), default=0.0)
        tip_racks[slot] = _tip_rack(
            slot, rack.tip_type, rack.n_tips, capacity, kind=kind, labware=labware.get(slot)
        )
        if tip_racks[slot].num_items < rack.n_tips:
            raise DeckTranslationError(
                f"tip rack {slot!r}: the deck gives it {rack.n_tips} tips but "
                f"{tip_racks[slot].model or 'its rack'!r} holds {tip_racks[slot].num_items}"
            )
        for spot in tip_racks[slot].get_all_items()[: rack.n_used]:
            spot.tracker.remove_tip(commit=True)
        for spot in tip_racks[slot].get_all_items()[rack.n_tips :]:
            spot.tracker.remove_tip(commit=True)
        placed[slot] = tip_racks[slot]
    placements: dict[str, Placement] = {}
    plr_deck: plr.Deck
    if kind == "ot2":
        plr_deck = _ot2_deck(placed)
    elif kind in HAMILTON_DECK_KINDS:
        plr_deck, placements = hamilton_deck(kind, placed)
    elif kind == "tecan_evo150":
        largest = {slot: max(m.capacity_ul for m in members) for slot, members in groups.items()}
        plr_deck, placements = evo150_deck(placed, largest)
    else:
        plr_deck = _generic_deck(placed)
    _fill(deck, containers)
    return PlrDeck(plr_deck, kind, containers, tip_racks, placements)


# -- slots and their vessels ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Member:
    """One container of a slot: the tandem location it serves, its well name in the slot, its capacity."""

    location: str
    well: str | None  # "A1" for `<slot>/A1`, None for a vessel that is the whole slot
    capacity_ul: float


def _slot_groups(deck: Deck) -> dict[str, list[_Member]]:
    groups: dict[str, list[_Member]] = {}
    for location, slot_name, capacity in [
        *((s.name, s.slot, s.capacity_ul) for s in deck.stocks),
        *((w.slot, w.slot, w.capacity_ul) for w in deck.wells),
    ]:
        slot, _, well = slot_name.partition("/")
        if well and not _WELL_NAME.match(well):
            raise DeckTranslationError(
                f"{slot_name!r}: a well in a slot is named by row letter and column number, like '{slot}/A1'"
            )
        groups.setdefault(slot, []).append(_Member(location, well or None, capacity))
    for slot, members in groups.items():
        whole = [m for m in members if m.well is None]
        if whole and len(members) > 1:
            raise DeckTranslationError(
                f"slot {slot!r} holds {whole[0].location!r} as a whole and also wells "
                f"{sorted(m.well for m in members if m.well)}; a slot holds one or the other"
            )
    return groups


def _vessel(slot: str, members: list[_Member], labware: str | None) -> tuple[Any, dict[str, Container]]:
    """The resource on `slot` and the container of each tandem location on it."""
    if members[0].well is None:
        member = members[0]
        if labware is None:
            tube = _generic_tube(f"slot {slot}", member.capacity_ul)
        else:
            tube = _standard(slot, labware, Container)
            _check_holds(slot, member, tube)
        return tube, {member.location: tube}
    plate = _generic_plate(f"slot {slot}", members) if labware is None else _standard(slot, labware, Plate)
    by_location: dict[str, Container] = {}
    for member in members:
        assert member.well is not None  # a slot of wells has only wells (checked in _slot_groups)
        try:
            well = plate.get_item(member.well)
        except (IndexError, KeyError, ValueError):
            raise DeckTranslationError(
                f"slot {slot!r}: {labware!r} has no well {member.well!r} (for {member.location!r})"
            ) from None
        _check_holds(slot, member, well)
        by_location[member.location] = well
    return plate, by_location


def _standard(slot: str, name: str, kind: type) -> Any:
    """A labware built by PyLabRobot's definition `name`, checked to be a `kind`."""
    factory = getattr(plr, name, None)
    if not callable(factory):
        raise DeckTranslationError(f"slot {slot!r}: PyLabRobot 0.2.2 defines no labware {name!r}")
    try:
        resource = factory(f"slot {slot}")
    except Exception as exc:  # a definition may need a download or files we do not have
        raise DeckTranslationError(
            f"slot {slot!r}: PyLabRobot could not build {name!r}: {type(exc).__name__}: {exc}"
        ) from None
    if not isinstance(resource, kind):
        raise DeckTranslationError(
            f"slot {slot!r}: {name!r} is a {type(resource).__name__}, but the deck puts a "
            f"{kind.__name__} there"
        )
    return resource


def _check_holds(slot: str, member: _Member, container: Container) -> None:
    if container.max_volume < member.capacity_ul * (1 - 1e-9):
        raise DeckTranslationError(
            f"slot {slot!r}: {member.location!r} holds up to {member.capacity_ul:g} µL on the deck but "
            f"the labware's {container.name!r} only {container.max_volume:g} µL"
        )


def _generic_tube(name: str, capacity_ul: float) -> Tube:
    side = 28.0  # a 20 mL scintillation vial's footprint, near enough
    return Tube(
        name,
        size_x=side,
        size_y=side,
        size_z=_height_mm(capacity_ul, side),
        max_volume=capacity_ul,
        material_z_thickness=_WALL_MM,
    )


def _generic_plate(name: str, members: list[_Member]) -> Plate:
    cells = [_row_column(m.well or "") for m in members]
    rows, columns = max(r for r, _ in cells) + 1, max(c for _, c in cells) + 1
    pitch = min((_FOOTPRINT_X - 10) / columns, (_FOOTPRINT_Y - 10) / rows)
    side = 0.8 * pitch
    depth = max(_height_mm(m.capacity_ul, side) for m in members)
    items: dict[str, Well] = {}
    for member, (row, column) in zip(members, cells, strict=True):
        well = Well(
            member.well or "",
            size_x=side,
            size_y=side,
            size_z=depth,
            max_volume=member.capacity_ul,
            material_z_thickness=_WALL_MM,
        )
        # PyLabRobot's y grows to the back and row A is the back row
        well.location = Coordinate(5 + column * pitch, 5 + (rows - 1 - row) * pitch, 1)
        items[member.well or ""] = well
    return Plate(name, size_x=_FOOTPRINT_X, size_y=_FOOTPRINT_Y, size_z=depth + 2, ordered_items=items)


def _row_column(well: str) -> tuple[int, int]:
    match = _WELL_NAME.match(well)
    assert match is not None  # checked in _slot_groups
    letters, number = match.groups()
    row = 0
    for letter in letters:
        row = row * 26 + (ord(letter) - ord("A") + 1)
    return row - 1, int(number) - 1


def _height_mm(capacity_ul: float, side_mm: float) -> float:
    return max(10.0, capacity_ul / (side_mm * side_mm))  # 1 µL = 1 mm³


# -- tip racks -----------------------------------------------------------------------------------


def _tip_rack(
    slot: str, tip_type: str, n_tips: int, capacity_ul: float, *, kind: DeckKind, labware: str | None
) -> TipRack:
    if labware is not None:
        rack: TipRack = _standard(slot, labware, TipRack)
        return rack
    if kind == "ot2":
        if n_tips != 96:
            raise DeckTranslationError(
                f"tip rack {slot!r}: an OT-2 tip rack holds 96 tips, the deck says {n_tips}"
            )
        fits = [v for v in OT2_TIP_VOLUMES_UL if v >= capacity_ul * (1 - 1e-9)]
        if not fits:
            raise DeckTranslationError(
                f"tip rack {slot!r}: no OT-2 tip holds {capacity_ul:g} µL ({tip_type!r} tips); "
                f"OT-2 tips hold {', '.join(f'{v:g}' for v in OT2_TIP_VOLUMES_UL)} µL"
            )
        tip_volume = fits[0]
    elif kind in HAMILTON_DECK_KINDS:
        return hamilton_tip_rack(slot, tip_type, n_tips, capacity_ul)
    elif kind == "tecan_evo150":
        return tecan_tip_rack(slot, tip_type, n_tips, capacity_ul)
    else:
        tip_volume = capacity_ul * (1 + GENERIC_TIP_HEADROOM)
    return _generic_tip_rack(f"slot {slot}", tip_type, max(n_tips, 1), tip_volume)


def _generic_tip_rack(name: str, tip_type: str, n_tips: int, tip_volume_ul: float) -> TipRack:
    rows = min(8, n_tips)
    columns = math.ceil(n_tips / rows)
    pitch = 9.0  # the SBS well pitch

    def make_tip(name: str) -> Tip:
        return Tip(
            has_filter=False,
            total_tip_length=60.0,
            maximal_volume=tip_volume_ul,
            fitting_depth=8.0,
            name=name,
        )

    spots: dict[str, TipSpot] = {}
    # a rack is filled column by column (A1, B1, ... H1, A2, ...), the order robots take tips in
    for column in range(columns):
        for row in range(rows):
            spot = TipSpot(
                f"{chr(ord('A') + row)}{column + 1}", size_x=pitch, size_y=pitch, make_tip=make_tip
            )
            spot.location = Coordinate(10 + column * pitch, 10 + (rows - 1 - row) * pitch, 0)
            spots[spot.name] = spot
    size_x = max(_FOOTPRINT_X, 20 + columns * pitch)
    rack = TipRack(name, size_x=size_x, size_y=_FOOTPRINT_Y, size_z=60.0, ordered_items=spots, model=tip_type)
    return rack


# -- the deck ------------------------------------------------------------------------------------


def _generic_deck(placed: Mapping[str, Any]) -> plr.Deck:
    width = _SLOT_PITCH_X * (len(placed) + 1)
    deck = plr.Deck(size_x=max(width, 200.0), size_y=200.0, size_z=0.0, name="tandem deck")
    for i, resource in enumerate(placed.values()):
        deck.assign_child_resource(resource, location=Coordinate(i * _SLOT_PITCH_X, 50, 0))
    deck.assign_child_resource(
        Trash("trash", size_x=_FOOTPRINT_X, size_y=_FOOTPRINT_Y, size_z=50),
        location=Coordinate(len(placed) * _SLOT_PITCH_X, 50, 0),
    )
    return deck


def _ot2_deck(placed: Mapping[str, Any]) -> OTDeck:
    deck = OTDeck(name="tandem OT-2 deck")
    for slot, resource in placed.items():
        number = int(slot) if slot.isdigit() else None
        if number not in OT2_LABWARE_SLOTS:
            raise DeckTranslationError(
                f"slot {slot!r} is not on an OT-2 deck: labware goes in slots 1-11 (12 holds the trash)"
            )
        deck.assign_child_at_slot(resource, number)
    return deck


def _fill(deck: Deck, containers: Mapping[str, Container]) -> None:
    """Start every volume tracker at what the deck says the container holds."""
    volumes = {s.name: s.volume_ul for s in deck.stocks} | {w.slot: w.volume_ul for w in deck.wells}
    for location, container in containers.items():
        container.tracker.set_volume(volumes[location])


__all__ = [
    "GENERIC_TIP_HEADROOM",
    "OT2_TIP_VOLUMES_UL",
    "PlrDeck",
    "build_plr_deck",
]
