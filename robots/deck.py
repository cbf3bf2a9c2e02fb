"""The deck of a formulation lab and its inventory: stocks, wells, tips and pipettes.

Everything here is a frozen value. A step that changes the deck (aspirating from
a stock, filling a well, using tips) returns a new `Deck`, so a robot backend can
compute the deck after an operation, check it, and then commit it or throw it
away: nothing is half-changed when an operation is refused.

Volumes are in µL. A stock's or well's `dead_volume_ul` is what a pipette cannot
reach at the bottom of the vessel: it counts against what is available, never as
usable liquid.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from tandem.components import Components
from tandem.composition import Composition, union
from tandem.errors import TandemError


class DeckError(TandemError, ValueError):
    """A deck, or an item on it, is malformed: a negative volume, a vessel over-filled, a name used twice."""


class UnknownDeckItemError(TandemError, KeyError, ValueError):
    """A name or slot refers to nothing on the deck."""

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        self.kind = kind
        self.name = name
        self.known = tuple(known)
        super().__init__(name)

    def __str__(self) -> str:
        return f"no {self.kind} {self.name!r} on the deck; known: {', '.join(self.known) or '(none)'}"


def _check_volume(what: str, label: str, value: float, *, positive: bool = False) -> None:
    ok = isinstance(value, int | float) and math.isfinite(value) and (value > 0 if positive else value >= 0)
    if not ok:
        bound = "> 0" if positive else ">= 0"
        raise DeckError(f"{what}: {label} must be a finite number of µL {bound}, got {value!r}")


def _check_fraction(what: str, label: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and -1 < value < 1):
        raise DeckError(f"{what}: {label} is a relative error and must lie in (-1, 1), got {value!r}")


@dataclass(frozen=True)
class Pipette:
    """A pipette channel: the volumes it can move in one transfer, its tips and its accuracy.

    `systematic_error` is the relative bias of the delivered volume (-0.01 delivers
    1 % less than asked); `random_error` is the relative standard deviation (CV).
    The recipe solver uses them to choose between pipettes; simulated backends use
    them to make the realized composition differ from the target as a real robot's does.
    """

    name: str
    min_volume_ul: float
    max_volume_ul: float
    tip_type: str
    systematic_error: float = 0.0
    random_error: float = 0.0

    def __post_init__(self) -> None:
        what = f"pipette {self.name!r}"
        if not self.name:
            raise DeckError("a pipette needs a non-empty name")
        _check_volume(what, "min_volume_ul", self.min_volume_ul, positive=True)
        _check_volume(what, "max_volume_ul", self.max_volume_ul, positive=True)
        if self.min_volume_ul > self.max_volume_ul:
            raise DeckError(
                f"{what}: min_volume_ul ({self.min_volume_ul:g}) must not exceed "
                f"max_volume_ul ({self.max_volume_ul:g})"
            )
        if not self.tip_type:
            raise DeckError(f"{what}: tip_type must not be empty")
        _check_fraction(what, "systematic_error", self.systematic_error)
        if not (math.isfinite(self.random_error) and 0 <= self.random_error < 1):
            raise DeckError(f"{what}: random_error is a CV and must lie in [0, 1), got {self.random_error!r}")

    @property
    def relative_uncertainty(self) -> float:
        """Bias and scatter combined: the figure of merit for choosing between pipettes."""
        return math.hypot(self.systematic_error, self.random_error)

    def transfers_for(self, volume_ul: float) -> int | None:
        """Fewest equal transfers that move `volume_ul` with this pipette, or None if none can.

        `k` equal parts work when `k·min <= volume <= k·max`; the smallest such `k` is
        `ceil(volume / max)`, and if that fails no larger `k` succeeds.
        """
        if not (math.isfinite(volume_ul) and volume_ul > 0):
            return None
        k = max(1, math.ceil(volume_ul / self.max_volume_ul - 1e-12))
        return k if volume_ul / k >= self.min_volume_ul * (1 - 1e-12) else None


@dataclass(frozen=True)
class Stock:
    """A vial of stock solution: what it holds, how much is left, and how much is out of reach."""

    name: str
    slot: str
    composition: Composition
    volume_ul: float
    capacity_ul: float
    dead_volume_ul: float = 0.0

    def __post_init__(self) -> None:
        what = f"stock {self.name!r}"
        if not self.name or not self.slot:
            raise DeckError(f"{what}: a stock needs a non-empty name and slot")
        if not isinstance(self.composition, Composition):
            raise DeckError(
                f"{what}: composition must be a Composition, got {type(self.composition).__name__}"
            )
        _check_volume(what, "volume_ul", self.volume_ul)
        _check_volume(what, "capacity_ul", self.capacity_ul, positive=True)
        _check_volume(what, "dead_volume_ul", self.dead_volume_ul)
        if self.volume_ul > self.capacity_ul * (1 + 1e-12):
            raise DeckError(
                f"{what}: holds {self.volume_ul:g} µL but its vial takes at most {self.capacity_ul:g} µL"
            )
        if self.dead_volume_ul >= self.capacity_ul:
            raise DeckError(
                f"{what}: dead volume {self.dead_volume_ul:g} µL must be below the capacity "
                f"{self.capacity_ul:g} µL"
            )

    @property
    def available_ul(self) -> float:
        """What a pipette can still take out: the volume above the dead volume."""
        return max(0.0, self.volume_ul - self.dead_volume_ul)

    @property
    def density_g_per_ml(self) -> float:
        return self.composition.density_g_per_ml


@dataclass(frozen=True)
class Well:
    """A well (or tube) that a sample is mixed in. Empty when `contents` is None."""

    slot: str
    capacity_ul: float
    dead_volume_ul: float = 0.0
    contents: Composition | None = None

    def __post_init__(self) -> None:
        what = f"well {self.slot!r}"
        if not self.slot:
            raise DeckError("a well needs a non-empty slot")
        _check_volume(what, "capacity_ul", self.capacity_ul, positive=True)
        _check_volume(what, "dead_volume_ul", self.dead_volume_ul)
        if self.dead_volume_ul >= self.capacity_ul:
            raise DeckError(
                f"{what}: dead volume {self.dead_volume_ul:g} µL must be below the capacity "
                f"{self.capacity_ul:g} µL"
            )
        if self.contents is not None:
            if self.contents.total_mass_mg is None:
                raise DeckError(f"{what}: contents need a total amount (build them with a total volume)")
            if self.volume_ul > self.capacity_ul * (1 + 1e-9):
                raise DeckError(
                    f"{what}: {self.volume_ul:.6g} µL would over-fill it (capacity {self.capacity_ul:g} µL)"
                )

    @property
    def volume_ul(self) -> float:
        if self.contents is None:
            return 0.0
        volume = self.contents.total_volume_ul
        assert volume is not None  # checked in __post_init__
        return volume

    @property
    def is_empty(self) -> bool:
        return self.contents is None

    @property
    def available_ul(self) -> float:
        return max(0.0, self.volume_ul - self.dead_volume_ul)


@dataclass(frozen=True)
class TipRack:
    slot: str
    tip_type: str
    n_tips: int
    n_used: int = 0

    def __post_init__(self) -> None:
        what = f"tip rack {self.slot!r}"
        if not self.slot or not self.tip_type:
            raise DeckError(f"{what}: a tip rack needs a slot and a tip type")
        for label, value in (("n_tips", self.n_tips), ("n_used", self.n_used)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise DeckError(f"{what}: {label} must be a whole number >= 0, got {value!r}")
        if self.n_used > self.n_tips:
            raise DeckError(f"{what}: {self.n_used} tips used but the rack holds only {self.n_tips}")

    @property
    def tips_left(self) -> int:
        return self.n_tips - self.n_used


@dataclass(frozen=True)
class Deck:
    """Everything on the deck of one formulation lab.

    `components` are the substances the deck knows about; every stock and well
    holds only these (matched by name and definition).
    """

    components: Components
    stocks: tuple[Stock, ...] = ()
    wells: tuple[Well, ...] = ()
    tip_racks: tuple[TipRack, ...] = ()
    pipettes: tuple[Pipette, ...] = ()
    #: (slot, name) pairs: the standard labware on a slot, by the name of its definition in the
    #: robot's library (PyLabRobot's); a slot not named gets generic labware built from the numbers
    labware: tuple[tuple[str, str], ...] = ()
    _stock_index: dict[str, int] = field(init=False, repr=False, compare=False, hash=False)
    _well_index: dict[str, int] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        for label in ("stocks", "wells", "tip_racks", "pipettes"):
            object.__setattr__(self, label, tuple(getattr(self, label)))
        _unique("stock name", (s.name for s in self.stocks))
        _unique("pipette name", (p.name for p in self.pipettes))
        # stocks, wells and racks share the physical deck: one thing per slot; and a
        # transfer's source is a stock name or a well slot, so those must not collide either
        _unique(
            "slot",
            [s.slot for s in self.stocks] + [w.slot for w in self.wells] + [r.slot for r in self.tip_racks],
        )
        clash = {s.name for s in self.stocks} & {w.slot for w in self.wells}
        if clash:
            raise DeckError(f"stock names and well slots must differ; both use {sorted(clash)}")
        holders: list[tuple[str, Composition]] = [(f"stock {s.name!r}", s.composition) for s in self.stocks]
        holders += [(f"well {w.slot!r}", w.contents) for w in self.wells if w.contents is not None]
        for what, comp in holders:
            for name, component in comp.components.items():
                if name not in self.components:
                    raise DeckError(
                        f"{what} holds {name!r}, which the deck does not define; "
                        f"defined components: {', '.join(self.components) or '(none)'}"
                    )
                if self.components[name] != component:
                    raise DeckError(f"{what} defines {name!r} differently from the deck's components")
        tip_types = {r.tip_type for r in self.tip_racks}
        for p in self.pipettes:
            if self.tip_racks and p.tip_type not in tip_types:
                raise DeckError(
                    f"pipette {p.name!r} takes {p.tip_type!r} tips but the deck's racks hold only "
                    f"{sorted(tip_types)}"
                )
        self._check_labware()
        object.__setattr__(self, "_stock_index", {s.name: i for i, s in enumerate(self.stocks)})
        object.__setattr__(self, "_well_index", {w.slot: i for i, w in enumerate(self.wells)})

    def _check_labware(self) -> None:
        # a mapping is taken too; kept as pairs, so that the deck stays a hashable value
        pairs = self.labware.items() if isinstance(self.labware, Mapping) else self.labware
        object.__setattr__(self, "labware", tuple((str(slot), name) for slot, name in pairs))
        _unique("labware slot", (slot for slot, _ in self.labware))
        # a plate's wells (`4/A1`) stand on its slot (`4`)
        held = [s.slot for s in self.stocks] + [w.slot for w in self.wells]
        slots = {slot.partition("/")[0] for slot in held} | {r.slot for r in self.tip_racks}
        for slot, name in self.labware:
            if not (isinstance(name, str) and name):
                raise DeckError(f"slot {slot!r}: a labware is named by a non-empty text, got {name!r}")
            if slot not in slots:
                raise DeckError(
                    f"labware {name!r} is named for slot {slot!r}, which holds nothing; "
                    f"slots: {', '.join(sorted(slots)) or '(none)'}"
                )

    @property
    def labware_by_slot(self) -> dict[str, str]:
        """The standard labware named for each slot that has one."""
        return dict(self.labware)

    # -- lookups ------------------------------------------------------------------------------

    def stock(self, name: str) -> Stock:
        try:
            return self.stocks[self._stock_index[name]]
        except KeyError:
            raise UnknownDeckItemError("stock", name, self._stock_index) from None

    def well(self, slot: str) -> Well:
        try:
            return self.wells[self._well_index[slot]]
        except KeyError:
            raise UnknownDeckItemError("well", slot, self._well_index) from None

    def pipette(self, name: str) -> Pipette:
        for p in self.pipettes:
            if p.name == name:
                return p
        raise UnknownDeckItemError("pipette", name, (p.name for p in self.pipettes))

    def has_stock(self, name: str) -> bool:
        return name in self._stock_index

    def has_well(self, slot: str) -> bool:
        return slot in self._well_index

    def tips_left(self, tip_type: str) -> int:
        return sum(r.tips_left for r in self.tip_racks if r.tip_type == tip_type)

    def empty_wells(self) -> tuple[Well, ...]:
        return tuple(w for w in self.wells if w.is_empty)

    def source_composition(self, source: str) -> Composition:
        """Composition of a transfer source: a stock (by name) or a filled well (by slot)."""
        if self.has_stock(source):
            return self.stock(source).composition
        well = self.well(source)
        if well.contents is None:
            raise DeckError(f"well {source!r} is empty: there is nothing to take from it")
        return well.contents

    def source_available_ul(self, source: str) -> float:
        if self.has_stock(source):
            return self.stock(source).available_ul
        return self.well(source).available_ul

    # -- functional updates -------------------------------------------------------------------

    def with_stock_volume(self, name: str, volume_ul: float) -> Deck:
        stock = replace(self.stock(name), volume_ul=volume_ul)  # re-validated by Stock
        stocks = tuple(stock if s.name == name else s for s in self.stocks)
        return replace(self, stocks=stocks)

    def with_well_contents(self, slot: str, contents: Composition | None) -> Deck:
        well = replace(self.well(slot), contents=contents)  # re-validated (capacity) by Well
        wells = tuple(well if w.slot == slot else w for w in self.wells)
        return replace(self, components=_extend(self.components, contents), wells=wells)

    def with_tips_used(self, tip_type: str, n: int) -> Deck:
        """Use `n` tips of `tip_type`, from the first racks on."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise DeckError(f"the number of tips used must be a whole number >= 0, got {n!r}")
        if n > self.tips_left(tip_type):
            raise DeckError(f"{n} {tip_type!r} tips needed but only {self.tips_left(tip_type)} are left")
        racks = []
        for rack in self.tip_racks:
            take = min(n, rack.tips_left) if rack.tip_type == tip_type else 0
            racks.append(replace(rack, n_used=rack.n_used + take) if take else rack)
            n -= take
        return replace(self, tip_racks=tuple(racks))

    def with_stock(self, stock: Stock) -> Deck:
        """Add a stock (or replace the one of the same name)."""
        stocks = (*(s for s in self.stocks if s.name != stock.name), stock)
        return replace(self, components=_extend(self.components, stock.composition), stocks=stocks)


def _extend(components: Components, comp: Composition | None) -> Components:
    return components if comp is None else union([components, comp.components])


def _unique(what: str, names: Iterable[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DeckError(f"{what} {name!r} is used twice on the deck")
        seen.add(name)


__all__ = ["Deck", "DeckError", "Pipette", "Stock", "TipRack", "UnknownDeckItemError", "Well"]
