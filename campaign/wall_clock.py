"""A real station's time: the wall clock, and the timekeeper that puts its work on the timeline.

The twin's `StationClock` is virtual: its simulated devices spend time on it. A real
station's devices take the time they take, so its clock is the wall: `now_s` is the
seconds since the campaign's lab started (plus where a resumed campaign left off), and
its timeline is recorded from what the station's RunEngine did, as it did it.

`RunTimekeeper` watches one RunEngine: every call of it (`RE(plan)`) is station work,
from the moment the RunEngine starts running until it is idle again; the documents of
its runs cut that span into activities, each named after what ended it (an event of the
`load` stream ends the loading, one of `primary` the exposure). Time between calls —
the agent deciding, the loop waiting for a result — is the station idle. So the
runner's station hours on EPICS stations are real elapsed time at the station.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from tandem.stations import Interval, Timeline

#: a stop request is looked at this often while a station waits out a pause, in s
_WAIT_STEP_S = 0.5
#: plans whose run opens after the robot has pipetted (the time before their start document is mostly
#: the robot's); see `tandem.plans.sample`
_PIPETTING_PLANS = frozenset({"sample_plan", "prepare_sample", "prepare_load_rinse"})
#: activity names the runner groups (`tandem.campaign.runner_accounting.activities`) by stream
_STREAM_ACTIVITIES = {
    "preparation": "liquid_handler",
    "load": "load",
    "rinse": "rinse",
    "empty_cell": "expose:empty_cell",
    "transmission": "expose:transmission",
    "primary": "expose",
}
_SET_UP = "set up"


class WallClock:
    """Station time of a real station: wall seconds since `started_at` (epoch s), from `start_s`.

    Keeps `tandem.protocols.StationTime`. Thread-safe. `stop_requested` cuts short a wait
    (`idle_until`) for a station that was set aside, so Ctrl-C is not held up by a pause.
    """

    def __init__(
        self,
        station: str,
        *,
        start_s: float = 0.0,
        started_at: float | None = None,
        stop_requested: Callable[[], bool] | None = None,
    ) -> None:
        self.station = station
        self._epoch = time.time() if started_at is None else started_at
        self._offset_s = start_s
        self._stop_requested = stop_requested
        self._timeline = Timeline(station)
        self._lock = threading.Lock()

    def at(self, epoch_s: float) -> float:
        """Station time of the wall-clock moment `epoch_s` (as documents stamp their `time`)."""
        with self._lock:
            return self._offset_s + (epoch_s - self._epoch)

    @property
    def now_s(self) -> float:
        return self.at(time.time())

    @property
    def timeline(self) -> tuple[Interval, ...]:
        return self._timeline.intervals

    def busy_s(self, activity_prefix: str = "") -> float:
        return self._timeline.busy_s(activity_prefix)

    def record(self, activity: str, start_s: float, end_s: float) -> Interval:
        """Put an interval on the timeline; one that ends after now (a resumed campaign's history)
        moves the clock on, so station time goes on from where the campaign left off."""
        interval = self._timeline.add(activity, start_s, end_s)
        with self._lock:
            behind = end_s - (self._offset_s + (time.time() - self._epoch))
            if behind > 0:
                self._offset_s += behind
        return interval

    def idle_until(self, t_s: float) -> None:
        """Wait until station time `t_s` (a set-aside station's pause is real time at a real station)."""
        while (left := t_s - self.now_s) > 0:
            if self._stop_requested is not None and self._stop_requested():
                return
            time.sleep(min(left, _WAIT_STEP_S))


class RunTimekeeper:
    """Records a RunEngine's work on a `WallClock`: subscribe it, and make it the RunEngine's state hook.

    `rig.RE.subscribe(keeper)` and `rig.RE.state_hook = keeper.state_changed`: every span
    from running to idle is station work; the documents in between divide it into activities.
    """

    def __init__(self, clock: WallClock) -> None:
        self.clock = clock
        self._mark: float | None = None  # epoch s of the end of the last recorded interval, while running
        self._streams: dict[str, str] = {}
        self._lock = threading.Lock()

    def state_changed(self, new_state: str, old_state: str) -> None:
        if new_state == "running" and old_state != "running":
            with self._lock:
                self._mark = time.time()
        elif new_state == "idle":
            # what the plan did after its last document (closing moves, a failure's clean-up)
            self._close(time.time(), _SET_UP)
            with self._lock:
                self._mark = None

    def __call__(self, name: str, doc: Mapping[str, Any]) -> None:
        if name == "descriptor":
            self._streams[str(doc["uid"])] = str(doc.get("name", ""))
            return
        if name == "start":
            # the run opens once the station is set up and, for a sample, once the robot has pipetted
            activity = "liquid_handler" if doc.get("plan_name") in _PIPETTING_PLANS else _SET_UP
        elif name == "event":
            stream = self._streams.get(str(doc["descriptor"]), "")
            activity = _STREAM_ACTIVITIES.get(stream, _SET_UP)
        elif name == "stop":
            activity = _SET_UP
        else:
            return
        self._close(float(doc.get("time", time.time())), activity)

    def _close(self, epoch_s: float, activity: str) -> None:
        """The station worked on `activity` from the mark until `epoch_s`."""
        with self._lock:
            mark = self._mark
            if mark is None or epoch_s <= mark:
                return
            self._mark = epoch_s
        self.clock.record(activity, self.clock.at(mark), self.clock.at(epoch_s))


__all__ = ["RunTimekeeper", "WallClock"]
