"""The liquid handler: executes a `Recipe` on a deck, over a swappable robot backend.

Three layers, after PyLabRobot's front end / backend split:

* `LiquidHandlerBackend` — the seam: the four commands a pipetting robot speaks
  (an Opentrons OT-2's HTTP protocol API has the same ones: pickUpTip, aspirate,
  dispense, dropTip). Each reports how much liquid moved, as best the robot
  knows it, and how long the step took. `tandem.sim.liquid_handler` implements it
  for the digital twin; an OT-2 backend would drop in beside it.
* `Inventory` — what is on the deck now (a `Deck` value) and in each tip. Every
  operation reserves its change first, and commits it when the backend reports
  success or rolls it back when the backend fails: the inventory never holds a
  half-done operation.
* `LiquidHandler` — the ophyd device. `set(recipe)` first checks the whole recipe
  against the inventory (stock volumes above dead volume, tips, well capacity,
  pipette ranges) and refuses it with a typed error *before the first command*;
  then it runs the transfers in a thread and returns a `Status`. The realized
  composition (from the volumes the robot reports) and the step timings are
  readable signals, so a plan records them with `trigger_and_read`.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
from ophyd import Component as Cpt
from ophyd import Device, Signal
from ophyd.status import DeviceStatus

from tandem.composition import Composition
from tandem.errors import TandemError
from tandem.robots.deck import Deck, DeckError, UnknownDeckItemError
from tandem.robots.recipe import InfeasibleRecipeError, Reason, ReasonCode, Recipe, Transfer, mix

#: Relative slack when comparing volumes, so that a recipe that exactly empties a stock
#: down to its dead volume or fills a well to the brim is not refused for rounding.
_VOLUME_RTOL = 1e-9


# -- errors -------------------------------------------------------------------------------------


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


class LiquidHandlerBusyError(TandemError, RuntimeError):
    """A recipe was started while another one is running."""


class BackendError(TandemError, RuntimeError):
    """The robot refused or failed a command (raised by backends)."""


# -- the backend seam ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StepReport:
    """What a backend reports for one command.

    `volume_ul` is the volume moved as best the robot knows it: a gravimetric or
    liquid-level reading if it has one, else the commanded volume (None for tip
    handling). `duration_s` is the station time the step took.
    """

    command: str
    duration_s: float
    volume_ul: float | None = None


@runtime_checkable
class LiquidHandlerBackend(Protocol):
    """The commands of a pipetting robot. Locations are deck slots, stock names or well slots."""

    def pick_up_tip(self, pipette: str, tip_rack: str) -> StepReport: ...

    def aspirate(self, pipette: str, source: str, volume_ul: float) -> StepReport: ...

    def dispense(self, pipette: str, destination: str, volume_ul: float) -> StepReport: ...

    def drop_tip(self, pipette: str) -> StepReport: ...


# -- the inventory ------------------------------------------------------------------------------


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
        if volume > available * (1 + _VOLUME_RTOL) + 1e-9:
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
        if volume > well.capacity_ul * (1 + _VOLUME_RTOL):
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
        low = pipette.min_volume_ul * (1 - _VOLUME_RTOL)
        high = pipette.max_volume_ul * (1 + _VOLUME_RTOL)
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


# -- the device ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepRecord:
    """One executed command: what, which transfer it belonged to, and the station time it took."""

    transfer_index: int
    command: str
    duration_s: float
    volume_ul: float | None


class LiquidHandler(Device):
    """A pipetting robot as an ophyd device: `set(recipe)` prepares a sample.

    Readable signals (recorded by `trigger_and_read`): the destination well, the
    target and realized compositions as JSON, their largest mass-fraction
    difference, the sample volume, and the station time of every step.
    """

    destination = Cpt(Signal, value="", kind="normal")
    target_json = Cpt(Signal, value="{}", kind="normal")
    realized_json = Cpt(Signal, value="{}", kind="normal")
    deviation = Cpt(Signal, value=math.nan, kind="hinted")
    volume_ul = Cpt(Signal, value=math.nan, kind="normal")
    step_durations_s = Cpt(Signal, value=np.zeros(0), kind="normal")
    prepare_time_s = Cpt(Signal, value=0.0, kind="normal")

    def __init__(self, backend: LiquidHandlerBackend, deck: Deck, *, name: str, **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        if not isinstance(backend, LiquidHandlerBackend):
            raise TypeError(f"backend must implement LiquidHandlerBackend, got {type(backend).__name__}")
        self.backend = backend
        self.inventory = Inventory(deck)
        self.steps: list[StepRecord] = []
        self._running = threading.Lock()

    @property
    def deck(self) -> Deck:
        """The deck as it is now (committed operations only)."""
        return self.inventory.deck

    def set(self, recipe: Recipe) -> DeviceStatus:
        """Check `recipe` against the inventory, then execute it; the Status finishes when it is made.

        A recipe that cannot be carried out raises here, before any command is sent.
        """
        if not isinstance(recipe, Recipe):
            raise InvalidRecipeForDeckError(
                [f"a LiquidHandler is set to a Recipe, got {type(recipe).__name__}"]
            )
        if not self._running.acquire(blocking=False):
            raise LiquidHandlerBusyError(f"{self.name}: a recipe is already running")
        try:
            check_recipe(self.inventory.deck, recipe)
        except Exception:
            self._running.release()
            raise
        status = DeviceStatus(self)

        def work() -> None:
            try:
                self._execute(recipe)
            except Exception as exc:
                status.set_exception(exc)
            else:
                status.set_finished()
            finally:
                self._running.release()

        threading.Thread(target=work, name=f"{self.name}-recipe", daemon=True).start()
        return status

    def _execute(self, recipe: Recipe) -> None:
        self.steps = []
        for i, transfer in enumerate(recipe.transfers):
            self._transfer(i, transfer)
        well = self.inventory.deck.well(recipe.destination)
        realized = well.contents
        if realized is None:  # pragma: no cover - a checked recipe always fills its destination
            raise DeckError(f"well {recipe.destination!r} is empty after its recipe")
        durations = np.array([s.duration_s for s in self.steps])
        self.destination.put(recipe.destination)
        self.target_json.put(json.dumps(recipe.target.to_dict()))
        self.realized_json.put(json.dumps(realized.to_dict()))
        self.deviation.put(realized.max_abs_difference(recipe.target))
        self.volume_ul.put(well.volume_ul)
        self.step_durations_s.put(durations)
        self.prepare_time_s.put(float(durations.sum()))

    def realized(self) -> Composition:
        """The composition of the last prepared sample, from the volumes the robot reported."""
        well = self.inventory.deck.well(self.destination.get())
        if well.contents is None:
            raise DeckError(f"well {well.slot!r} is empty: no sample has been prepared there")
        return well.contents

    # -- one transfer, four committed operations ------------------------------------------------

    def _transfer(self, index: int, t: Transfer) -> None:
        pipette = self.inventory.deck.pipette(t.pipette)
        with self.inventory.operation() as pending:
            rack = next(
                r for r in pending.deck.tip_racks if r.tip_type == pipette.tip_type and r.tips_left > 0
            )
            pending.deck = pending.deck.with_tips_used(pipette.tip_type, 1)
            self._record(index, self.backend.pick_up_tip(t.pipette, rack.slot))
        with self.inventory.operation() as pending:
            composition = pending.deck.source_composition(t.source)
            before = pending.deck.source_available_ul(t.source)
            if t.volume_ul > before * (1 + _VOLUME_RTOL) + 1e-9:
                raise InventoryError(
                    (Reason(ReasonCode.INSUFFICIENT_STOCK, f"{t.source!r} ran out: {before:.4g} µL left"),)
                )
            report = self._record(index, self.backend.aspirate(t.pipette, t.source, t.volume_ul))
            taken = report.volume_ul if report.volume_ul is not None else t.volume_ul
            pending.deck = _take(pending.deck, t.source, taken)
            pending.tips[t.pipette] = TipContents(composition, taken)
        with self.inventory.operation() as pending:
            tip = pending.tips.get(t.pipette)
            if tip is None:  # pragma: no cover - aspirate above always fills it
                raise DeckError(f"pipette {t.pipette!r} holds no liquid to dispense")
            report = self._record(index, self.backend.dispense(t.pipette, t.destination, tip.volume_ul))
            delivered = report.volume_ul if report.volume_ul is not None else tip.volume_ul
            well = pending.deck.well(t.destination)
            parts = [(tip.composition, delivered)]
            if well.contents is not None:
                parts.insert(0, (well.contents, well.volume_ul))
            pending.deck = pending.deck.with_well_contents(t.destination, mix(parts))
            pending.tips[t.pipette] = None
        with self.inventory.operation():
            self._record(index, self.backend.drop_tip(t.pipette))

    def _record(self, index: int, report: StepReport) -> StepReport:
        self.steps.append(StepRecord(index, report.command, report.duration_s, report.volume_ul))
        return report


def _take(deck: Deck, source: str, volume_ul: float) -> Deck:
    if deck.has_stock(source):
        stock = deck.stock(source)
        return deck.with_stock_volume(source, max(0.0, stock.volume_ul - volume_ul))
    well = deck.well(source)
    left = well.volume_ul - volume_ul
    contents = well.contents.with_total_volume(left) if well.contents is not None and left > 0 else None
    return deck.with_well_contents(source, contents)


__all__ = [
    "BackendError",
    "InvalidRecipeForDeckError",
    "Inventory",
    "InventoryError",
    "LiquidHandler",
    "LiquidHandlerBackend",
    "LiquidHandlerBusyError",
    "StepRecord",
    "StepReport",
    "TipContents",
    "check_recipe",
]
