"""Each station as the agent daemon last saw it: its queue, whether it answers, whether its samples fail.

Two ways a station drops out, kept apart because they mean different things:

* it does not answer (the RE Manager or the network is down): it is asked again with
  back-off (`OutageBackoff`), its pending samples stay pending, and after
  `set_aside_after_s` it is reported set aside;
* it answers, but its samples keep failing (a dead cell-loader IOC, an empty stock): its
  circuit breaker (`tandem.breaker`, the campaign's `faults`) sets it aside, nothing is
  sent there until its pause has passed, then one trial sample.

Times are the daemon's clock, read through `clock` at each call; the times of a
set-aside station are reported as wall-clock dates, which a person reads.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Mapping
from typing import Any

from tandem.agents.daemon_settings import DaemonSettings, OutageBackoff
from tandem.agents.station_queue import QueueSnapshot, StationQueue
from tandem.breaker import BreakerState, StationBreaker, StationHealth

logger = logging.getLogger(__name__)


class StationWatch:
    """The stations' last snapshots, their outages and their breakers; see the module docstring."""

    def __init__(
        self,
        queues: Mapping[str, StationQueue],
        settings: DaemonSettings,
        *,
        clock: Callable[[], float],
        wall_offset_s: float,
    ) -> None:
        self.queues = queues
        self.settings = settings
        self._clock = clock
        #: wall-clock seconds at `clock`'s zero, taken once: the times reported stay the same each round
        self._wall_offset_s = wall_offset_s
        self._health = {sid: OutageBackoff(settings) for sid in queues}
        self._snapshots: dict[str, QueueSnapshot] = {}
        #: stations whose samples keep failing (the queue answers, the samples fail), on `clock`
        self._breaker = StationBreaker(queues, settings.breaker)

    # -- answering -----------------------------------------------------------------------------

    def look(self) -> None:
        """Take a fresh snapshot of each station that is due to be asked."""
        now = self._clock()
        for sid, queue in self.queues.items():
            health = self._health[sid]
            if not health.ready(now):
                continue
            try:
                self._snapshots[sid] = queue.snapshot()
                if health.down_since is not None:
                    logger.info("station %s answers again", sid)
                health.ok()
            except Exception as exc:
                wait = health.failed(exc, now)
                self._snapshots.pop(sid, None)
                logger.warning("station %s does not answer (%s); asking again in %.1f s", sid, exc, wait)

    def snapshot(self, station: str) -> QueueSnapshot | None:
        """The station's queue as last seen (None while it does not answer)."""
        return self._snapshots.get(station)

    def unreachable(self, station: str, error: BaseException) -> None:
        """Adding to the station's queue failed: it is not known to answer until it is asked again."""
        self._health[station].failed(error, self._clock())
        self._snapshots.pop(station, None)

    def available(self, station: str) -> bool:
        return station in self._snapshots and self._health[station].down_since is None

    def set_aside(self, station: str) -> bool:
        down = self._health[station].down_since
        return down is not None and self._clock() - down >= self.settings.set_aside_after_s

    # -- failing samples -----------------------------------------------------------------------

    def may_send(self, station: str) -> bool:
        """Whether the station's breaker lets a sample go there now."""
        return self._breaker.may_send(station, self._clock())

    def sent(self, station: str) -> None:
        self._breaker.sent(station, self._clock())

    def succeeded(self, station: str) -> None:
        self._breaker.record(station, ok=True, now_s=self._clock())

    def end_trial(self, station: str, reason: str) -> None:
        """A sample that says nothing about the station's devices ended (refused, vanished, stopped by a
        person): if it was the station's trial, it counts as failed, or the station would wait for
        a trial result forever; otherwise it does not count."""
        now = self._clock()
        trial_running = self._breaker.state(station, now) is BreakerState.HALF_OPEN
        if trial_running and not self._breaker.may_send(station, now):
            self.count_failure(station, f"its trial sample ended without a result: {reason}")

    def count_failure(self, station: str, reason: str) -> None:
        now = self._clock()
        if self._breaker.record(station, ok=False, now_s=now, reason=reason):
            health = self._breaker.health(now)[station]
            logger.warning(
                "station %s set aside after %d failed samples in a row (last: %s); "
                "one trial sample at %s, the other stations get the budget meanwhile",
                station,
                health.failures_in_a_row,
                reason,
                self._wall(health.retry_at_s),
            )

    def all_failing(self) -> str | None:
        """Why every station is set aside for failing samples at once (None while one is not)."""
        if not self._breaker.all_set_aside():
            return None
        parts = []
        for sid, health in self._breaker.health(self._clock()).items():
            parts.append(f"{sid} ({_failure_summary(health)})")
        return "every station is set aside for failing samples: " + "; ".join(parts)

    def failing(self, station: str) -> dict[str, Any] | None:
        """Why and until when `station` is set aside for failing samples (None: it is not).

        Times are wall-clock ISO strings: the breaker keeps the daemon's clock, a person reads dates.
        """
        health = self._breaker.health(self._clock())[station]
        if health.retry_at_s is None:
            return None
        return {
            **health.to_dict(),
            "since": self._wall(health.set_aside_at_s),
            "until": self._wall(health.retry_at_s),
        }

    # -- reporting -----------------------------------------------------------------------------

    def status(self, station: str, open_decisions: int) -> dict[str, Any]:
        """The station's part of the daemon's heartbeat."""
        health = self._health[station]
        snap = self._snapshots.get(station)
        failing = self.failing(station)
        return {
            "answering": health.down_since is None,
            "set_aside": self.set_aside(station) or failing is not None,
            "last_error": health.last_error,
            "failing": failing,
            "queued": len(snap.queued) if snap else None,
            "running": snap.running.sample_uid if snap and snap.running else None,
            "open_decisions": open_decisions,
        }

    def _wall(self, clock_s: float | None) -> str | None:
        """A time of the daemon's clock as a wall-clock ISO string."""
        if clock_s is None:
            return None
        wall = self._wall_offset_s + clock_s
        return datetime.datetime.fromtimestamp(wall, datetime.UTC).isoformat(timespec="seconds")


def _failure_summary(health: StationHealth) -> str:
    return f"{health.failures_in_a_row} failed in a row, last: {health.last_failure or 'no reason given'}"
