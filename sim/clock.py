"""The virtual clock: simulated actions take station time, accounted per station.

Each station has its own `StationClock`. An action (pipetting, loading, an
exposure) spends station time on it and is recorded on the station's timeline.
With `time_scale` 0 (tests, the demo) nothing waits in real time; with 1 the
twin runs as slowly as the hardware would; values between speed it up.
"""

from __future__ import annotations

import math
import threading
import time

from tandem.stations import Interval, Timeline


class StationClock:
    """Station time of one station. Thread-safe: devices of a station share it."""

    def __init__(self, station: str, time_scale: float = 0.0, start_s: float = 0.0) -> None:
        if not (math.isfinite(time_scale) and time_scale >= 0):
            raise ValueError(f"time_scale must be >= 0 (0 = never wait), got {time_scale!r}")
        self.station = station
        self.time_scale = time_scale
        self._now_s = start_s
        self._timeline = Timeline(station)
        self._lock = threading.Lock()

    @property
    def now_s(self) -> float:
        with self._lock:
            return self._now_s

    @property
    def timeline(self) -> tuple[Interval, ...]:
        return self._timeline.intervals

    def busy_s(self, activity_prefix: str = "") -> float:
        """Station time spent on activities whose name starts with `activity_prefix`."""
        return self._timeline.busy_s(activity_prefix)

    def spend(self, duration_s: float, activity: str) -> Interval:
        """Spend `duration_s` of station time on `activity`; waits `duration_s * time_scale` real s."""
        if not (math.isfinite(duration_s) and duration_s >= 0):
            raise ValueError(f"a duration must be >= 0 s, got {duration_s!r}")
        with self._lock:
            start_s = self._now_s
            self._now_s = start_s + duration_s
        interval = self._timeline.add(activity, start_s, start_s + duration_s)
        if self.time_scale > 0 and duration_s > 0:
            time.sleep(duration_s * self.time_scale)
        return interval

    def record(self, activity: str, start_s: float, end_s: float) -> Interval:
        """Put an interval the station spent before this clock existed on its timeline (a resumed
        campaign's history), so busy time and utilisation go on from it; never waits."""
        interval = self._timeline.add(activity, start_s, end_s)
        with self._lock:
            self._now_s = max(self._now_s, end_s)
        return interval

    def idle_until(self, t_s: float) -> None:
        """Let the station sit idle until station time `t_s` (no-op if already past it)."""
        with self._lock:
            self._now_s = max(self._now_s, t_s)
