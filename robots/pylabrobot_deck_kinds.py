"""The robot decks tandem places a deck file on, carriers on rails, and the error when it cannot.

Shared by the deck builder (`tandem.robots.pylabrobot_deck`) and the modules that
place labware on one make of robot (`tandem.robots.pylabrobot_deck_hamilton`,
`tandem.robots.pylabrobot_deck_tecan`), so neither imports the other.

Hamilton and Tecan decks hold labware on carriers that stand on rails: a carrier
is a few rails wide and has sites from front to back. `place_on_rails` puts each
slot's labware on a site of a carrier of the kind its maker's module chose, fills
carriers site by site, and stands them side by side from the first free rail; it
refuses, naming what would fit, a deck file that needs more rails than are free
or labware larger than its carrier's site.

* `"generic"`: a plain PyLabRobot deck, slots side by side (the chatterbox).
* `"ot2"`: the OT-2's numbered slots 1-11.
* `"hamilton_starlet"`, `"hamilton_star"`, `"hamilton_vantage"`: a Hamilton deck
  of rails (32, 56, or the 1.3 m Vantage's 54), labware on Hamilton carriers.
* `"tecan_evo150"`: a Tecan EVO 150 deck of 45 rails, labware on Tecan carriers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tandem.errors import TandemError

DeckKind = Literal["generic", "ot2", "hamilton_starlet", "hamilton_star", "hamilton_vantage", "tecan_evo150"]


class DeckTranslationError(TandemError, ValueError):
    """The deck cannot be set up as PyLabRobot resources on the chosen robot's deck."""


@dataclass(frozen=True)
class Placement:
    """Where a deck file's slot sits on a deck of rails: the carrier, its rails, the site on it.

    The robot's real deck must be loaded the same way; `str()` says it in words.
    """

    carrier: str  # the carrier's name on the PyLabRobot deck
    model: str  # PyLabRobot's definition of the carrier, e.g. "TIP_CAR_480_A00"
    rails: int  # the leftmost rail the carrier stands on
    width_rails: int
    site: int  # 0 is the site nearest the front

    def __str__(self) -> str:
        last = self.rails + self.width_rails - 1
        return f"{self.model} on rails {self.rails}-{last}, site {self.site} (from the front)"


#: how much larger than its site labware may be: carriers seat an SBS plate (127.76 mm) in a
#: 127 mm site, with the play a real carrier has
SITE_PLAY_MM = 1.0


@dataclass(frozen=True)
class CarrierKind:
    """A PyLabRobot carrier definition and what its sites are for."""

    model: str  # the definition's name, e.g. "PLT_CAR_L5AC_A00"
    make: Callable[[str], Any]  # the definition: a name -> a carrier
    holds: str  # what its sites hold, in words: "tip racks", "plates", "tubes up to 29 mm"
    play_mm: float = SITE_PLAY_MM  # how much larger than a site its labware's definitions may be


def place_on_rails(
    deck: Any,
    *,
    robot: str,
    slots: Sequence[tuple[str, Any, CarrierKind]],
    rails: tuple[int, int],
    rail_pitch_mm: float,
    assign: Callable[[Any, Any, int], None],
    larger: str,
) -> dict[str, Placement]:
    """Put each slot's labware on `deck` on a carrier of its kind; where each slot landed.

    `slots` are (slot, labware, carrier kind) in the order carriers are to stand,
    left to right; `rails` the first and last rail free for them; `assign(deck,
    carrier, rail)` stands a carrier on the deck; `larger` names the decks that
    have more rails, for the error when this one has too few.
    """
    kinds: dict[str, CarrierKind] = {}
    by_kind: dict[str, list[tuple[str, Any]]] = {}
    for slot, labware, kind in slots:
        kinds.setdefault(kind.model, kind)
        by_kind.setdefault(kind.model, []).append((slot, labware))
    needed: list[tuple[CarrierKind, int, int, int]] = []  # kind, sites each, carriers, rails each
    for model, members in by_kind.items():
        probe = kinds[model].make("probe")
        per, width = len(probe.sites), math.ceil(probe.get_size_x() / rail_pitch_mm - 1e-6)
        needed.append((kinds[model], per, math.ceil(len(members) / per), width))
    total = sum(n * width for _, _, n, width in needed)
    first, last = rails
    if first + total - 1 > last:
        parts = ", ".join(f"{n} {k.model} ({k.holds}, {w} rails each)" for k, _, n, w in needed)
        raise DeckTranslationError(
            f"the deck file's {len(slots)} slots do not fit on a {robot}: they need {total} rails of "
            f"carriers ({parts}) but rails {first}-{last} ({last - first + 1}) are free; "
            f"use fewer slots, or {larger}"
        )
    placements: dict[str, Placement] = {}
    rail, number = first, 0
    for kind, per, n, width in needed:
        members = by_kind[kind.model]
        for i in range(n):
            number += 1  # carriers are numbered left to right
            name = f"carrier {number}"
            carrier = kind.make(name)
            for site, (slot, labware) in enumerate(members[i * per : (i + 1) * per]):
                _check_fits(slot, labware, kind, carrier.sites[site])
                try:
                    carrier.assign_resource_to_site(labware, site)
                except (ValueError, TypeError) as exc:  # e.g. a plate holder takes skirted plates only
                    raise DeckTranslationError(
                        f"slot {slot!r}: a {kind.model} site ({kind.holds}) cannot hold "
                        f"{_what(labware)}: {exc}"
                    ) from None
                placements[slot] = Placement(name, kind.model, rail, width, site)
            try:
                assign(deck, carrier, rail)
            except ValueError as exc:  # the deck's own collision check
                raise DeckTranslationError(f"{kind.model} on rail {rail} of a {robot}: {exc}") from None
            rail += width
    return placements


def _check_fits(slot: str, labware: Any, kind: CarrierKind, site: Any) -> None:
    x, y = float(labware.get_size_x()), float(labware.get_size_y())
    site_x, site_y = float(site.get_size_x()), float(site.get_size_y())
    if x > site_x + kind.play_mm or y > site_y + kind.play_mm:
        raise DeckTranslationError(
            f"slot {slot!r}: {_what(labware)} is {x:g} × {y:g} mm, but a {kind.model} site "
            f"({kind.holds}) holds {site_x:g} × {site_y:g} mm"
        )


def _what(labware: Any) -> str:
    return f"{labware.model!r}" if labware.model else f"its {type(labware).__name__.lower()}"


def vendor_tip_rack(
    slot: str,
    tip_type: str,
    n_tips: int,
    capacity_ul: float,
    *,
    vendor: str,
    racks: Sequence[tuple[float, str]],
    definitions: Any,
    hint: str = "",
) -> Any:
    """`vendor`'s 96-tip rack (from `racks`: tip volume in µL and definition name, smallest first,
    made from the module `definitions`) whose tips hold `capacity_ul`, a pipette's largest volume."""
    if n_tips > 96:
        raise DeckTranslationError(
            f"tip rack {slot!r}: a {vendor} tip rack holds 96 tips, the deck says {n_tips}"
        )
    fits = [name for volume, name in racks if volume >= capacity_ul * (1 - 1e-9)]
    if not fits:
        sizes = ", ".join(f"{v:g}" for v, _ in racks)
        raise DeckTranslationError(
            f"tip rack {slot!r}: no {vendor} tip holds {capacity_ul:g} µL ({tip_type!r} tips); "
            f"they hold {sizes} µL{hint}"
        )
    return getattr(definitions, fits[0])(f"slot {slot}")


__all__ = [
    "SITE_PLAY_MM",
    "CarrierKind",
    "DeckKind",
    "DeckTranslationError",
    "Placement",
    "place_on_rails",
    "vendor_tip_rack",
]
