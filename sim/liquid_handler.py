"""The digital twin's pipetting robot: a PyLabRobot robot, with station time, pipetting error and a log.

The twin pipettes through PyLabRobot as a real deck does: each command goes to a
`tandem.robots.pylabrobot_backend.PyLabRobotBackend` on the backend the station's
profile names (`station_robot`; PyLabRobot's software-only chatterbox for the twin's
bundled stations), on a PyLabRobot deck built from the station's. PyLabRobot's
trackers hold the robot's state — which channel carries a tip, how much liquid is
in it, what each stock, well and tip rack holds — and refuse what a robot would (a
second tip, a dispense from an empty tip, a drop without a tip, more liquid than a
container holds). What PyLabRobot lacks is kept here:

* pipetting error: each pipette delivers with its own bias and scatter
  (`Pipette.systematic_error`, `Pipette.random_error`) drawn from a seeded
  `tandem.robots.pipetting_model.PipettingErrorModel`; PyLabRobot is told to move
  that volume, so its trackers follow the twin's liquid, and the command reports
  it, as a robot with a gravimetric check would;
* station time: every command spends its modelled duration (`PipettingTimes`: tip
  pick-up ~5 s, a transfer ~10-20 s) on the station's `StationClock`;
* a command log (`commands`), so tests can prove that a refused recipe sent none;
* the pipette's own range: no more liquid in a tip than its pipette holds (a
  PyLabRobot tip holds more than its pipette's nominal volume);
* faults on demand (`fail_on`), to exercise recovery.

It owns the robot and the thread of its event loop: whoever makes it closes it
(`close()`, or leaving a `with` block).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from tandem.instrument import InstrumentFacts
from tandem.instrument_profile import ProfileFacts, RobotSpec
from tandem.instrument_profile_file import bundled_profile, bundled_profile_path
from tandem.protocols import StepReport
from tandem.robots.deck import Deck, Pipette
from tandem.robots.liquid_handler import BackendError
from tandem.robots.pipetting_model import PipettingErrorModel, PipettingTimes
from tandem.robots.pylabrobot_backend import PyLabRobotBackend
from tandem.sim.clock import StationClock

#: the robot a profile names `simulated` (the twin's own): the twin's robot on PyLabRobot's chatterbox
TWIN_ROBOT_BACKEND = "chatterbox"
_COMMANDS = ("pick_up_tip", "aspirate", "dispense", "drop_tip")


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


def station_robot(instrument: InstrumentFacts) -> RobotSpec:
    """The robot a twin station's profile names: its own profile's, or its bundled profile's.

    A twin instrument (`tandem.sim.instruments.Instrument`) is made from the bundled
    profile of its name, which says the robot; one with no bundled profile gets the
    twin's robot on the chatterbox.
    """
    if isinstance(instrument, ProfileFacts):
        return instrument.profile.robot
    if bundled_profile_path(instrument.station) is not None:
        return bundled_profile(instrument.station).profile.robot
    return RobotSpec(backend=TWIN_ROBOT_BACKEND)


class SimulatedLiquidHandler:
    """A `LiquidHandlerBackend` over PyLabRobot with pipetting error, station time and a command log.

    `backend` names the PyLabRobot backend (`tandem.robots.pylabrobot_registry.BACKENDS`;
    `simulated` is the chatterbox), made with `backend_options`. The robot is set up here
    and stopped by `close()`.
    """

    def __init__(
        self,
        deck: Deck,
        clock: StationClock,
        *,
        seed: int = 0,
        times: PipettingTimes | None = None,
        backend: str = TWIN_ROBOT_BACKEND,
        backend_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.pipettes = {p.name: p for p in deck.pipettes}
        self.clock = clock
        self.seed = seed
        self.times = times or PipettingTimes()
        self.commands: list[Command] = []
        self._fail_on: dict[str, int] = {}
        self.robot = PyLabRobotBackend(
            deck,
            TWIN_ROBOT_BACKEND if backend == "simulated" else backend,
            backend_options=backend_options,
            errors=PipettingErrorModel(seed),
            times=self.times,
        )

    # -- lifetime --------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the robot and its event loop's thread. Safe to call twice."""
        self.robot.close()

    def __enter__(self) -> SimulatedLiquidHandler:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def fail_on(self, command: str, occurrence: int = 1) -> None:
        """Make the `occurrence`-th next `command` (e.g. "aspirate") fail, as a jammed robot would."""
        if command not in _COMMANDS or occurrence < 1:
            raise ValueError(f"cannot inject a fault on {command!r} (occurrence {occurrence})")
        self._fail_on[command] = occurrence

    # -- the backend protocol ---------------------------------------------------------------------

    def pick_up_tip(self, pipette: str, tip_rack: str) -> StepReport:
        self._pipette(pipette)
        self._maybe_fail("pick_up_tip")
        report = self.robot.pick_up_tip(pipette, tip_rack)
        return self._log(report, pipette=pipette, location=tip_rack)

    def aspirate(self, pipette: str, source: str, volume_ul: float) -> StepReport:
        spec = self._pipette(pipette)
        self._maybe_fail("aspirate")
        # refused before the robot is asked: PyLabRobot draws the pipetting error before it checks,
        # and a refused command must not spend a draw (one seed, the same samples after a refusal)
        held = self._in_tip_ul(pipette)
        room = (spec.max_volume_ul - held) * (1 + 1e-9)  # rounding, not a bigger tip
        if not (math.isfinite(volume_ul) and 0 < volume_ul <= room):
            raise BackendError(
                f"pipette {pipette!r} cannot aspirate {volume_ul!r} µL (holds {spec.max_volume_ul:g} µL, "
                f"{held:g} µL already in the tip)"
            )
        report = self.robot.aspirate(pipette, source, volume_ul)
        return self._log(report, pipette=pipette, location=source, volume_ul=volume_ul)

    def dispense(self, pipette: str, destination: str, volume_ul: float) -> StepReport:
        self._pipette(pipette)
        self._maybe_fail("dispense")
        report = self.robot.dispense(pipette, destination, volume_ul)
        return self._log(report, pipette=pipette, location=destination, volume_ul=volume_ul)

    def drop_tip(self, pipette: str) -> StepReport:
        self._pipette(pipette)
        self._maybe_fail("drop_tip")
        report = self.robot.drop_tip(pipette)
        return self._log(report, pipette=pipette, location="trash")

    # -- helpers -----------------------------------------------------------------------------------

    def _pipette(self, name: str) -> Pipette:
        try:
            return self.pipettes[name]
        except KeyError:
            raise BackendError(f"no pipette {name!r} mounted; mounted: {', '.join(self.pipettes)}") from None

    def _in_tip_ul(self, pipette: str) -> float:
        """What PyLabRobot's tracker says the pipette's tip holds; no tip is a refusal."""
        head = self.robot.lh.head[self.robot.channels[pipette]]
        if not head.has_tip:
            raise BackendError(f"pipette {pipette!r} has no tip: pick one up before aspirating")
        return float(head.get_tip().tracker.get_used_volume())

    def _maybe_fail(self, command: str) -> None:
        if command in self._fail_on:
            self._fail_on[command] -= 1
            if self._fail_on[command] == 0:
                del self._fail_on[command]
                raise BackendError(f"simulated fault: {command} failed")

    def _log(
        self, report: StepReport, *, pipette: str, location: str | None, volume_ul: float | None = None
    ) -> StepReport:
        # the robot's own durations are the times model's (`times=` above): station time, not wall time
        interval = self.clock.spend(report.duration_s, f"liquid_handler:{report.command}")
        self.commands.append(
            Command(
                report.command,
                pipette,
                location,
                volume_ul,
                report.volume_ul,
                interval.start_s,
                report.duration_s,
            )
        )
        return report


__all__ = ["TWIN_ROBOT_BACKEND", "Command", "SimulatedLiquidHandler", "station_robot"]
