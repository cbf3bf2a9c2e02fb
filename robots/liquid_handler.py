"""The liquid handler: executes a `Recipe` on a deck, over a swappable robot backend.

Three layers, after PyLabRobot's front end / backend split:

* `LiquidHandlerBackend` — the seam: the four commands a pipetting robot speaks
  (an Opentrons OT-2's HTTP protocol API has the same ones: pickUpTip, aspirate,
  dispense, dropTip). Each reports how much liquid moved, as best the robot
  knows it, and how long the step took (`StepReport`). It lives with the other
  seams in `tandem.protocols`; `tandem.robots.pylabrobot_backend` implements it over
  PyLabRobot (its chatterbox, an OT-2, ...), and `tandem.sim.liquid_handler` for the twin.
* `Inventory` — what is on the deck now (a `Deck` value) and in each tip. Every
  operation reserves its change first, and commits it when the backend reports
  success or rolls it back when the backend fails: the inventory never holds a
  half-done operation. It lives in `tandem.robots.inventory`, with `check_recipe`,
  what a recipe's transfers would do to it; this module holds the device.
* `LiquidHandler` — the ophyd device. `set(recipe)` first checks the whole recipe
  against the inventory (stock volumes above dead volume, tips, well capacity,
  pipette ranges) and refuses it with a typed error *before the first command*;
  then it runs the transfers in a thread and returns a `Status`. The realized
  composition (from the volumes the robot reports) and the step timings are
  readable signals, so a plan records them with `trigger_and_read`.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from ophyd import Component as Cpt
from ophyd import Device, Signal
from ophyd.status import DeviceStatus

from tandem.composition import Composition
from tandem.errors import TandemError
from tandem.protocols import LiquidHandlerBackend, StepReport
from tandem.robots.deck import Deck, DeckError
from tandem.robots.inventory import (
    VOLUME_RTOL,
    InvalidRecipeForDeckError,
    Inventory,
    InventoryError,
    TipContents,
    check_recipe,
    take,
)
from tandem.robots.recipe import Recipe
from tandem.robots.recipe_feasibility import Reason, ReasonCode
from tandem.robots.recipe_solver import mix
from tandem.robots.recipe_steps import Transfer


class LiquidHandlerBusyError(TandemError, RuntimeError):
    """A recipe was started while another one is running."""


class BackendError(TandemError, RuntimeError):
    """The robot refused or failed a command (raised by backends)."""


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
            if t.volume_ul > before * (1 + VOLUME_RTOL) + 1e-9:
                raise InventoryError(
                    (Reason(ReasonCode.INSUFFICIENT_STOCK, f"{t.source!r} ran out: {before:.4g} µL left"),)
                )
            report = self._record(index, self.backend.aspirate(t.pipette, t.source, t.volume_ul))
            taken = report.volume_ul if report.volume_ul is not None else t.volume_ul
            pending.deck = take(pending.deck, t.source, taken)
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


__all__ = [
    "BackendError",
    "LiquidHandler",
    "LiquidHandlerBusyError",
    "StepRecord",
]
