"""Names shared by every part that talks about a station and what it measures with."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from tandem.errors import TandemError


class Probe(StrEnum):
    """What a station scatters: it sets the contrast (X-ray or neutron SLDs)."""

    XRAY = "xray"
    NEUTRON = "neutron"


#: The two stations of the default linked lab. Station ids are plain strings so
#: that a facility can name more; these are the ones the twin and demo know.
SAXS = "saxs"
SANS = "sans"


class StationDeviceNames(NamedTuple):
    """What a station's devices are called, in the order the sample plan takes them."""

    station: str
    liquid_handler: str
    cell_loader: str


def device_names(station_id: str) -> StationDeviceNames:
    """The names of `station_id`'s devices: the devices are built with them, plans are queued with them.

    The one spelling of them: the rig names its devices so, the queue-server startup puts
    them in the worker's namespace so and allows only them, and the agent daemon queues the
    sample plan naming them so; a name spelled differently in one place would be a sample
    the RE Manager refuses.
    """
    return StationDeviceNames(station_id, f"{station_id}_liquid_handler", f"{station_id}_cell_loader")


class UnknownStationError(TandemError, KeyError):
    """A station id that names none of the stations known here."""

    def __init__(self, station: str, known: Iterable[str]) -> None:
        self.station = station
        self.known = tuple(sorted(known))
        super().__init__(station)

    def __str__(self) -> str:
        return f"unknown station {self.station!r}; known stations: {', '.join(self.known) or '(none)'}"


@dataclass(frozen=True)
class Interval:
    """One action on a station's timeline (pipetting, loading, an exposure), in station seconds."""

    station: str
    activity: str
    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


class Timeline:
    """A station's intervals in the order they were put on it: what its clock, virtual (the twin's
    `StationClock`) or the wall (a real station's `WallClock`), records. Thread-safe."""

    def __init__(self, station: str) -> None:
        self.station = station
        self._intervals: list[Interval] = []
        self._lock = threading.Lock()

    def add(self, activity: str, start_s: float, end_s: float) -> Interval:
        """Put `activity` from `start_s` to `end_s` on the timeline; refuses time running backwards."""
        if not (math.isfinite(start_s) and math.isfinite(end_s) and end_s >= start_s):
            raise ValueError(f"an interval runs forwards in finite time, got {start_s!r} to {end_s!r}")
        interval = Interval(self.station, activity, start_s, end_s)
        with self._lock:
            self._intervals.append(interval)
        return interval

    @property
    def intervals(self) -> tuple[Interval, ...]:
        with self._lock:
            return tuple(self._intervals)

    def busy_s(self, activity_prefix: str = "") -> float:
        """Station time spent on activities whose name starts with `activity_prefix`."""
        with self._lock:
            return math.fsum(i.duration_s for i in self._intervals if i.activity.startswith(activity_prefix))
