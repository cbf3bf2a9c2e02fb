"""The liquid handler's inventory, and what a recipe's transfers do to it.

`Inventory` holds what is on the deck now (a `Deck` value) and in each tip; every
operation of the device reserves its change and commits it only when the robot
reports success, so it never holds a half-done operation. `check_recipe` plays a
whole recipe's transfers on the deck before the first command: every unknown name
or out-of-range volume (`InvalidRecipeForDeckError`) and every shortage of stock,
tips or well capacity (`InventoryError`, with the recipe solver's reasons) is
reported at once. `take` is the deck after liquid is drawn from a stock or well.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from tandem.composition import Composition
from tandem.errors import TandemError
from tandem.robots.deck import Deck, UnknownDeckItemError
from tandem.robots.recipe import Recipe
from tandem.robots.recipe_feasibility import InfeasibleRecipeError, Reason, ReasonCode
from tandem.robots.recipe_solver import mix

#: Relative slack when comparing volumes, so that a recipe that exactly empties a stock
#: down to its dead volume or fills a well to the brim is not refused for rounding.
VOLUME_RTOL = 1e-9


class InvalidRecipeForDeckError(TandemError, ValueError):
    """A recipe names things this deck does not have, or asks a pipette for a volume outside its range."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__(self.problems)

    def __str__(self) -> str:
        lines = "\n".join(f"- {p}" for p in self.problems)
        return f"the recipe does not fit this deck ({len(self.problems)} problem(s)):\n{lines}"


class InventoryError(InfeasibleRecipeError):
    """The deck's inventory cannot carry out the recipe: not enough stock, tips or well capacity.

    A subclass of `InfeasibleRecipeError`, with the same `reasons` and codes, so
    that a caller handling "cannot be made" handles this too.
    """


@dataclass(frozen=True)
class TipContents:
    composition: Composition
    volume_ul: float


@dataclass
class _Pending:
    """One operation's reservation: the deck and tips as they will be if it succeeds."""

    deck: Deck
    tips: dict[str, TipContents | None]


@dataclass
class Inventory:
    """The deck now and the liquid in each pipette's tip, changed only by committed operations."""

    deck: Deck
    tips: dict[str, TipContents | None] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @contextlib.contextmanager
    def operation(self) -> Iterator[_Pending]:
        """Reserve a change; it is committed if the block succeeds and rolled back if it raises."""
        with self._lock:
            pending = _Pending(self.deck, dict(self.tips))
        yield pending  # an exception here discards `pending`: the rollback
        with self._lock:
            self.deck = pending.deck
            self.tips = pending.tips


def check_recipe(deck: Deck, recipe: Recipe) -> Deck:
    """The deck after `recipe`, if the deck can carry it out with the commanded volumes.

    Raises `InvalidRecipeForDeckError` listing every unknown stock, well or pipette
    and every volume outside a pipette's range, or `InventoryError` listing every
    shortage (stock, tips) and every well that is occupied or would over-fill.
    Changes nothing.
    """
    problems = _check_names(deck, recipe)
    if problems:
        raise InvalidRecipeForDeckError(problems)
    drawn: dict[str, float] = {}
    poured: dict[str, list[tuple[Composition, float]]] = {}
    tips: dict[str, int] = {}
    for t in recipe.transfers:
        drawn[t.source] = drawn.get(t.source, 0.0) + t.volume_ul
        composition = _planned_composition(deck, poured, t.source)
        poured.setdefault(t.destination, []).append((composition, t.volume_ul))
        tip_type = deck.pipette(t.pipette).tip_type
        tips[tip_type] = tips.get(tip_type, 0) + 1
    reasons = [
        *_occupied(deck, poured),
        *_shortages(deck, poured, drawn),
        *_overfills(deck, poured),
        *_tip_shortages(deck, tips),
    ]
    if reasons:
        raise InventoryError(tuple(reasons))
    after = deck
    for source, volume in drawn.items():
        if deck.has_stock(source):
            after = after.with_stock_volume(source, max(0.0, deck.stock(source).volume_ul - volume))
    for slot, parts in poured.items():
        after = after.with_well_contents(slot, _net_contents(parts, drawn.get(slot, 0.0)))
    for tip_type, n in tips.items():
        after = after.with_tips_used(tip_type, n)
    return after


def _occupied(deck: Deck, poured: dict[str, list[tuple[Composition, float]]]) -> list[Reason]:
    return [
        Reason(
            ReasonCode.DESTINATION_OCCUPIED,
            f"well {slot!r} already holds a sample; a recipe fills empty wells",
            {"well": slot},
        )
        for slot in sorted(poured)
        if not deck.well(slot).is_empty
    ]


def _shortages(
    deck: Deck, poured: dict[str, list[tuple[Composition, float]]], drawn: dict[str, float]
) -> list[Reason]:
    reasons = []
    for source, volume in drawn.items():
        available = _available_ul(deck, poured, source)
        if volume > available * (1 + VOLUME_RTOL) + 1e-9:
            reasons.append(
                Reason(
                    ReasonCode.INSUFFICIENT_STOCK,
                    f"{source!r} has {available:.4g} µL above its dead volume; "
                    f"the recipe takes {volume:.4g} µL",
                    {"source": source, "available_ul": available, "needed_ul": volume},
                )
            )
    return reasons


def _overfills(deck: Deck, poured: dict[str, list[tuple[Composition, float]]]) -> list[Reason]:
    reasons = []
    for slot, parts in poured.items():
        well = deck.well(slot)
        volume = math.fsum(v for _, v in parts)
        if volume > well.capacity_ul * (1 + VOLUME_RTOL):
            reasons.append(
                Reason(
                    ReasonCode.DESTINATION_TOO_SMALL,
                    f"well {slot!r} holds {well.capacity_ul:g} µL; the recipe pours {volume:.4g} µL into it",
                    {"well": slot, "capacity_ul": well.capacity_ul, "volume_ul": volume},
                )
            )
    return reasons


def _tip_shortages(deck: Deck, tips: dict[str, int]) -> list[Reason]:
    return [
        Reason(
            ReasonCode.NO_TIPS,
            f"the recipe needs {n} {tip_type!r} tips; {deck.tips_left(tip_type)} are left",
            {"tip_type": tip_type, "needed": n, "left": deck.tips_left(tip_type)},
        )
        for tip_type, n in sorted(tips.items())
        if n > deck.tips_left(tip_type)
    ]


def _check_names(deck: Deck, recipe: Recipe) -> list[str]:
    problems: list[str] = []
    if not recipe.transfers:
        problems.append("the recipe has no transfers")
    filled: set[str] = set()
    for i, t in enumerate(recipe.transfers, 1):
        where = f"transfer {i} ({t.volume_ul:g} µL {t.source} -> {t.destination})"
        if not (math.isfinite(t.volume_ul) and t.volume_ul > 0):
            problems.append(f"{where}: the volume must be a positive number of µL")
        if not deck.has_stock(t.source) and not deck.has_well(t.source):
            problems.append(
                f"{where}: no stock or well {t.source!r}; stocks: {', '.join(s.name for s in deck.stocks)}"
            )
        elif deck.has_well(t.source) and deck.well(t.source).is_empty and t.source not in filled:
            problems.append(f"{where}: well {t.source!r} is empty and is not filled earlier in the recipe")
        if not deck.has_well(t.destination):
            problems.append(
                f"{where}: no well {t.destination!r}; wells: {', '.join(w.slot for w in deck.wells)}"
            )
        filled.add(t.destination)
        try:
            pipette = deck.pipette(t.pipette)
        except UnknownDeckItemError as exc:
            problems.append(f"{where}: {exc}")
            continue
        low = pipette.min_volume_ul * (1 - VOLUME_RTOL)
        high = pipette.max_volume_ul * (1 + VOLUME_RTOL)
        if math.isfinite(t.volume_ul) and not low <= t.volume_ul <= high:
            problems.append(
                f"{where}: pipette {pipette.name!r} moves "
                f"{pipette.min_volume_ul:g}-{pipette.max_volume_ul:g} µL"
            )
        if deck.tip_racks and not any(r.tip_type == pipette.tip_type for r in deck.tip_racks):
            problems.append(f"{where}: no rack holds {pipette.tip_type!r} tips for pipette {pipette.name!r}")
    return problems


def _planned_composition(
    deck: Deck, poured: dict[str, list[tuple[Composition, float]]], source: str
) -> Composition:
    if deck.has_stock(source):
        return deck.stock(source).composition
    if source in poured:
        return mix(poured[source])
    return deck.source_composition(source)


def _available_ul(deck: Deck, poured: dict[str, list[tuple[Composition, float]]], source: str) -> float:
    if deck.has_stock(source):
        return deck.stock(source).available_ul
    well = deck.well(source)
    volume = well.volume_ul + math.fsum(v for _, v in poured.get(source, []))
    return max(0.0, volume - well.dead_volume_ul)


def _net_contents(parts: list[tuple[Composition, float]], drawn_ul: float) -> Composition | None:
    total = math.fsum(v for _, v in parts) - drawn_ul
    if total <= 0:
        return None
    return mix(parts).with_total_volume(total)


def take(deck: Deck, source: str, volume_ul: float) -> Deck:
    """The deck after `volume_ul` is drawn from `source`, a stock or a well (its mixture unchanged)."""
    if deck.has_stock(source):
        stock = deck.stock(source)
        return deck.with_stock_volume(source, max(0.0, stock.volume_ul - volume_ul))
    well = deck.well(source)
    left = well.volume_ul - volume_ul
    contents = well.contents.with_total_volume(left) if well.contents is not None and left > 0 else None
    return deck.with_well_contents(source, contents)
