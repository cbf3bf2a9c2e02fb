"""The simulated pipetting robot: a `LiquidHandlerBackend` for the digital twin.

It behaves like a robot rather than a calculator:

* every command is logged (`commands`), so tests can prove that a refused recipe
  sent none;
* each pipette delivers with its own error — a systematic bias and a random CV
  (`Pipette.systematic_error`, `Pipette.random_error`) drawn from a seeded RNG by
  `tandem.robots.pipetting_model`, the model the PyLabRobot backend uses too —
  and reports the volume it actually moved, as a robot with a gravimetric check
  would; so the realized composition differs from the target as on a real deck;
* every step spends station time on a `StationClock` (tip pick-up ~5 s, a transfer
  ~10–20 s depending on volume), so a sample of a few transfers takes minutes of
  station time and no real time unless the clock is scaled;
* it enforces what a robot enforces (a tip before aspirating, no second tip, no
  more liquid in a tip than the pipette holds) and can be told to fail a command
  (`fail_on`) to exercise recovery.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from tandem.protocols import StepReport
from tandem.robots.deck import Pipette
from tandem.robots.liquid_handler import BackendError
from tandem.robots.pipetting_model import PipettingErrorModel, PipettingTimes
from tandem.sim.clock import StationClock


@dataclass(frozen=True)
class Command:
    """One command the simulated robot received, with the volume it really moved."""

    name: str
    pipette: str
    location: str | None
    volume_ul: float | None  # commanded
    moved_ul: float | None  # actually moved (pipetting error included)
    start_s: float
    duration_s: float


class SimulatedLiquidHandler:
    """A `LiquidHandlerBackend` with pipetting error, station time and a command log."""

    def __init__(
        self,
        pipettes: Iterable[Pipette],
        clock: StationClock,
        *,
        seed: int = 0,
        times: PipettingTimes | None = None,
    ) -> None:
        self.pipettes = {p.name: p for p in pipettes}
        self.clock = clock
        self.times = times or PipettingTimes()
        self.commands: list[Command] = []
        self._error = PipettingErrorModel(seed)
        self._tip_on: dict[str, bool] = dict.fromkeys(self.pipettes, False)
        self._in_tip_ul: dict[str, float] = dict.fromkeys(self.pipettes, 0.0)
        self._fail_on: dict[str, int] = {}

    def fail_on(self, command: str, occurrence: int = 1) -> None:
        """Make the `occurrence`-th next `command` (e.g. "aspirate") fail, as a jammed robot would."""
        if command not in ("pick_up_tip", "aspirate", "dispense", "drop_tip") or occurrence < 1:
            raise ValueError(f"cannot inject a fault on {command!r} (occurrence {occurrence})")
        self._fail_on[command] = occurrence

    # -- the backend protocol ---------------------------------------------------------------------

    def pick_up_tip(self, pipette: str, tip_rack: str) -> StepReport:
        self._pipette(pipette)
        self._maybe_fail("pick_up_tip")
        if self._tip_on[pipette]:
            raise BackendError(f"pipette {pipette!r} already carries a tip")
        self._tip_on[pipette] = True
        return self._log(
            "pick_up_tip", pipette=pipette, location=tip_rack, duration_s=self.times.pick_up_tip_s
        )

    def aspirate(self, pipette: str, source: str, volume_ul: float) -> StepReport:
        spec = self._pipette(pipette)
        self._maybe_fail("aspirate")
        if not self._tip_on[pipette]:
            raise BackendError(f"pipette {pipette!r} has no tip: pick one up before aspirating")
        room = (spec.max_volume_ul - self._in_tip_ul[pipette]) * (1 + 1e-9)  # rounding, not a bigger tip
        if not (math.isfinite(volume_ul) and 0 < volume_ul <= room):
            raise BackendError(
                f"pipette {pipette!r} cannot aspirate {volume_ul!r} µL (holds {spec.max_volume_ul:g} µL, "
                f"{self._in_tip_ul[pipette]:g} µL already in the tip)"
            )
        moved = self._error.moved_ul(spec, volume_ul)
        self._in_tip_ul[pipette] += moved
        return self._log(
            "aspirate",
            pipette=pipette,
            location=source,
            volume_ul=volume_ul,
            moved_ul=moved,
            duration_s=self.times.aspirate_s(volume_ul),
        )

    def dispense(self, pipette: str, destination: str, volume_ul: float) -> StepReport:
        self._pipette(pipette)
        self._maybe_fail("dispense")
        held = self._in_tip_ul[pipette]
        if not self._tip_on[pipette] or held <= 0:
            raise BackendError(f"pipette {pipette!r} holds no liquid to dispense")
        # A dispense empties the tip (blow-out): what was aspirated is what arrives.
        moved = min(held, volume_ul) if volume_ul < held * (1 - 1e-9) else held
        self._in_tip_ul[pipette] = held - moved
        return self._log(
            "dispense",
            pipette=pipette,
            location=destination,
            volume_ul=volume_ul,
            moved_ul=moved,
            duration_s=self.times.dispense_s(volume_ul),
        )

    def drop_tip(self, pipette: str) -> StepReport:
        self._pipette(pipette)
        self._maybe_fail("drop_tip")
        if not self._tip_on[pipette]:
            raise BackendError(f"pipette {pipette!r} has no tip to drop")
        self._tip_on[pipette] = False
        self._in_tip_ul[pipette] = 0.0
        return self._log("drop_tip", pipette=pipette, location="trash", duration_s=self.times.drop_tip_s)

    # -- helpers -----------------------------------------------------------------------------------

    def _pipette(self, name: str) -> Pipette:
        try:
            return self.pipettes[name]
        except KeyError:
            raise BackendError(f"no pipette {name!r} mounted; mounted: {', '.join(self.pipettes)}") from None

    def _maybe_fail(self, command: str) -> None:
        if command in self._fail_on:
            self._fail_on[command] -= 1
            if self._fail_on[command] == 0:
                del self._fail_on[command]
                raise BackendError(f"simulated fault: {command} failed")

    def _log(
        self,
        name: str,
        *,
        pipette: str,
        location: str | None,
        duration_s: float,
        volume_ul: float | None = None,
        moved_ul: float | None = None,
    ) -> StepReport:
        interval = self.clock.spend(duration_s, f"liquid_handler:{name}")
        self.commands.append(
            Command(name, pipette, location, volume_ul, moved_ul, interval.start_s, duration_s)
        )
        return StepReport(name, duration_s, moved_ul)


__all__ = ["Command", "SimulatedLiquidHandler"]
