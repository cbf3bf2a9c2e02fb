"""The seams between tandem's parts, in one place, as bluesky keeps its own (`bluesky.protocols`).

A part that needs another names what it needs by one of these Protocols, never by
the other part's concrete class, so an EPICS device, the digital twin's and a
future one (an OT-2 backend, an ophyd-async station) are interchangeable.

What each seam is, who keeps it and who relies on it:

* `LiquidHandlerBackend` (speaking `StepReport`): the four commands of a
  pipetting robot. Kept by the twin's `tandem.sim.liquid_handler` (an OT-2
  backend would sit beside it); driven by `tandem.robots.liquid_handler.LiquidHandler`.
* `LiquidHandlerDevice`: a liquid handler as plans drive it (`set(recipe)`,
  `read()`, `deck`, `realized()`). Kept by `tandem.robots.liquid_handler.LiquidHandler`
  (the twin gives it a simulated backend); used by `tandem.plans`.
* `CellLoaderDevice`: the cell loader as plans drive it (`set(Load/Rinse/Dry)`,
  `read()`, `cell_capacity`). Kept by `tandem.robots.cell_loader.CellLoader`
  (EPICS; the twin serves its PVs); used by `tandem.plans`.
* `StationDevices`: a station's beamline devices, its name and probe,
  `children()` and `check(scan)`. Kept by `tandem.devices.station.OphydStationDevices`
  (EPICS devices, or the twin's soft ones); used by `tandem.plans`.
* `Relabelling`: an agent that can be re-told phase names. Kept by the
  phase-mapping agents; used by the campaign's phase finding and the agent daemon.
* `StationTime`: a station's time and timeline, as the campaign runner accounts
  station hours with it. Kept by the twin's virtual `tandem.sim.clock.StationClock`
  and a real station's `tandem.campaign.wall_clock.WallClock`; used by `tandem.campaign`.

The three device Protocols are `runtime_checkable`: the plans check them
(`tandem.plans.device_check`), since the queue server hands a plan whatever
device its name resolves to. The beamline sub-device Protocols (`ScatteringDetector`
and the rest) are not: a runtime check reads properties, and theirs read PVs.
`StationDevices` leaves out `limits`: plans ask `check(scan)`, and the limits are
`tandem.devices.limits.StationLimits`, a part's type.

Seams that live elsewhere, and why:

* `Agent` (`tandem.agents.protocol`): it speaks `FeasibleRegion`, `DecisionRecord`
  and `Prediction`, the agents' own types; the core imports no part.
* `StationQueue` (`tandem.agents.station_queue`), `SampleRecorder`
  (`tandem.agents.daemon_dispatch`): the daemon's seams, typed in the daemon's
  values (`PlanRequest`, `QueueSnapshot`, journal `Entry`/`Attempt`).
* `ResultSource` (`tandem.agents.daemon_results`): speaks only `Observation`
  and could join here; it stays with the daemon, its one user, for now.
* `RunLike` (`tandem.analysis.raw_runs`), `OptimiserSettings`
  (`tandem.agents.phase_mapping`): seams inside one part.
* `GroundTruth`, `StationModel` (`tandem.sim`): seams inside the digital twin,
  which no real code path may import.
* `TiledNode`, `TiledArray`, `TiledContainer` (`tandem.catalog_layout`): already
  in the core, beside the catalog layout they type; every record-layer module
  imports them from there, and moving them would gain nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

from bluesky.protocols import Movable, Readable, Triggerable

from tandem.composition import Composition
from tandem.stations import Interval, Probe
from tandem.suggestions import ScanParameters

DeckT_co = TypeVar("DeckT_co", covariant=True)


# -- the robot backend seam ----------------------------------------------------------------------


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


# -- the formulation lab's devices, as plans drive them ------------------------------------------


@runtime_checkable
class LiquidHandlerDevice(Movable[Any], Readable[Any], Protocol[DeckT_co]):
    """A liquid handler: `set(recipe)` pipettes it, `read()` records what was made.

    Generic in its deck (`tandem.robots.deck.Deck`, a part's type): plans write
    ``LiquidHandlerDevice[Deck]``.
    """

    @property
    def deck(self) -> DeckT_co:
        """The deck as it is now: stocks, tips, wells."""
        ...

    def realized(self) -> Composition:
        """The composition of the last prepared sample."""
        ...


@runtime_checkable
class CellLoaderDevice(Movable[Any], Readable[Any], Protocol):
    """The cell loader: `set(Load(...))`, `set(Rinse(...))`, `set(Dry(...))`; `read()` records it."""

    @property
    def cell_capacity(self) -> Readable[Any]:
        """What the measurement cell holds (µL), a signal plans read with `bps.rd`."""
        ...


# -- a station's beamline devices ------------------------------------------------------------------


class Signal(Readable[Any], Movable[Any], Protocol):
    """One value a plan reads (`bps.rd`) or sets (`bps.mv`)."""

    def get(self) -> Any: ...


class ScatteringDetector(Readable[Any], Triggerable, Protocol):
    """An area detector; its geometry is read from signals named as `DetectorGeometry`'s fields."""

    @property
    def exposure_time(self) -> Signal: ...

    @property
    def exposure_range_s(self) -> tuple[float, float]: ...


class DetectorSetup(Readable[Any], Movable[Any], Protocol):
    """The detector configuration (distance, wavelength) by name: `set("short")`."""

    @property
    def readback(self) -> Signal: ...

    @property
    def names(self) -> tuple[str, ...]: ...


class Thermostat(Readable[Any], Movable[Any], Protocol):
    """The sample temperature controller: `set(celsius)` settles there."""

    @property
    def range_c(self) -> tuple[float, float]: ...


@runtime_checkable
class StationDevices(Protocol):
    """One station as plans use it: its devices, name and probe, and the check of a scan."""

    @property
    def name(self) -> str: ...

    @property
    def probe(self) -> Probe: ...

    @property
    def detector(self) -> ScatteringDetector: ...

    @property
    def shutter(self) -> Movable[Any]:
        """`set("open")`, `set("close")`."""
        ...

    @property
    def monitor(self) -> Readable[Any]:
        """Incident and transmitted counts."""
        ...

    @property
    def configuration(self) -> DetectorSetup: ...

    @property
    def temperature(self) -> Thermostat: ...

    @property
    def sample(self) -> Movable[Any]:
        """What is in the beam: `set({"uid": ..., "mass_fractions": ...})` or `set(None)`."""
        ...

    def children(self) -> Iterator[tuple[str, Any]]:
        """(attribute, device) pairs, as ophyd-async devices give them (the queue server lists them)."""
        ...

    def check(self, scan: ScanParameters) -> None:
        """Refuse `scan` with a `ScanLimitError` if the station cannot run it; moves nothing."""
        ...


# -- station time ------------------------------------------------------------------------------


class StationTime(Protocol):
    """A station's time in seconds since its campaign began, and what the station spent it on.

    The twin's clock is virtual (its devices spend time on it, nothing waits); a real station's
    runs on the wall (time passes by itself, its work is recorded as it happens). The runner asks
    no more of either, so its accounting of station hours is the station's own.
    """

    @property
    def now_s(self) -> float: ...

    @property
    def timeline(self) -> tuple[Interval, ...]:
        """What the station worked on, in order."""
        ...

    def busy_s(self, activity_prefix: str = "") -> float:
        """Station time spent on activities whose name starts with `activity_prefix`."""
        ...

    def record(self, activity: str, start_s: float, end_s: float) -> Interval:
        """Put an interval on the timeline (a resumed campaign's history); its time goes on from there."""
        ...

    def idle_until(self, t_s: float) -> None:
        """The station does nothing until station time `t_s`: a virtual clock jumps, a wall clock waits."""
        ...


# -- agents --------------------------------------------------------------------------------------


@runtime_checkable
class Relabelling(Protocol):
    """An agent that learns from phase labels and can be re-told them when phase finding renames runs."""

    def relabel(self, labels: Mapping[str, str]) -> int:
        """Take the phase name of each earlier run (run uid → name); return how many changed."""
        ...


__all__ = [
    "CellLoaderDevice",
    "DetectorSetup",
    "LiquidHandlerBackend",
    "LiquidHandlerDevice",
    "Relabelling",
    "ScatteringDetector",
    "Signal",
    "StationDevices",
    "StationTime",
    "StepReport",
    "Thermostat",
]
