"""A circuit breaker per station: a station whose samples keep failing is set aside, not fed the budget.

A dead cell-loader IOC, an empty stock, a detector that stopped answering: every sample sent to that
station fails, and without a breaker a campaign spends its whole budget there while the other station
waits. The breaker counts each station's failures in a row. At `failures_to_trip` the station is set
aside: no sample is sent there until `retry_after_s` has passed, then exactly one trial sample is
(the breaker is half-open). A trial that succeeds closes the breaker; one that fails sets the station
aside again for another pause. When every station is set aside at once, the campaign has no station
left to spend its budget on: the caller stops (the in-process campaign and the daemon both exit
non-zero then) rather than wait on stations that all failed.

Time is whatever clock the caller keeps — a station's virtual clock in the twin's campaign, wall-clock
seconds in the daemon — so the breaker itself never reads a clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from tandem.errors import TandemError


class BreakerError(TandemError, ValueError):
    """The breaker's settings or a station it was asked about are not valid."""


class BreakerState(StrEnum):
    CLOSED = "closed"  # samples go there
    OPEN = "open"  # set aside until its pause has passed
    HALF_OPEN = "half-open"  # one trial sample is allowed (or running)


@dataclass(frozen=True)
class BreakerSettings:
    #: failed samples in a row on one station that set it aside
    failures_to_trip: int = 3
    #: seconds (of the caller's clock) a set-aside station waits before one trial sample
    retry_after_s: float = 1800.0

    def __post_init__(self) -> None:
        if self.failures_to_trip < 1:
            raise BreakerError(
                f"failures_to_trip is a number of samples (1 or more), got {self.failures_to_trip}"
            )
        if not self.retry_after_s > 0:
            raise BreakerError(f"retry_after_s must be positive seconds, got {self.retry_after_s}")


@dataclass(frozen=True)
class StationHealth:
    """One station's breaker, as reported (JSON-ready through `to_dict`)."""

    station: str
    state: BreakerState
    #: failed samples in a row (0 after a success)
    failures_in_a_row: int
    #: why the last failed sample failed
    last_failure: str | None
    #: when (caller's clock) the station was set aside, and when it gets its trial sample
    set_aside_at_s: float | None
    retry_at_s: float | None

    def to_dict(self) -> dict[str, object]:
        return {
            "station": self.station,
            "state": self.state.value,
            "failures_in_a_row": self.failures_in_a_row,
            "last_failure": self.last_failure,
            "set_aside_at_s": self.set_aside_at_s,
            "retry_at_s": self.retry_at_s,
        }


@dataclass
class _Station:
    failures: int = 0
    last_failure: str | None = None
    set_aside_at_s: float | None = None
    retry_at_s: float | None = None
    trial_running: bool = False


class StationBreaker:
    """The breakers of a campaign's stations (see the module's docstring)."""

    def __init__(self, stations: Iterable[str], settings: BreakerSettings | None = None) -> None:
        self.settings = settings or BreakerSettings()
        self._stations = {sid: _Station() for sid in stations}
        if not self._stations:
            raise BreakerError("a breaker needs at least one station")

    def _get(self, station: str) -> _Station:
        try:
            return self._stations[station]
        except KeyError:
            raise BreakerError(
                f"no station {station!r} (the breaker knows {', '.join(sorted(self._stations))})"
            ) from None

    def state(self, station: str, now_s: float) -> BreakerState:
        s = self._get(station)
        if s.retry_at_s is None:
            return BreakerState.CLOSED
        return BreakerState.HALF_OPEN if now_s >= s.retry_at_s else BreakerState.OPEN

    def may_send(self, station: str, now_s: float) -> bool:
        """Whether a sample may be sent to `station` now (in half-open state: only if no trial is running)."""
        state = self.state(station, now_s)
        if state is BreakerState.CLOSED:
            return True
        return state is BreakerState.HALF_OPEN and not self._get(station).trial_running

    def sent(self, station: str, now_s: float) -> None:
        """A sample was sent to `station`: in half-open state it is the one trial."""
        if self.state(station, now_s) is BreakerState.HALF_OPEN:
            self._get(station).trial_running = True

    def record(self, station: str, *, ok: bool, now_s: float, reason: str | None = None) -> bool:
        """A sample on `station` ended; returns True when this failure set the station aside."""
        s = self._get(station)
        s.trial_running = False
        if ok:
            s.failures, s.last_failure, s.set_aside_at_s, s.retry_at_s = 0, None, None, None
            return False
        s.failures += 1
        s.last_failure = reason
        tripped = s.retry_at_s is not None or s.failures >= self.settings.failures_to_trip
        if tripped:
            s.set_aside_at_s = now_s
            s.retry_at_s = now_s + self.settings.retry_after_s
        return tripped

    def all_set_aside(self) -> bool:
        """Every station is set aside (none has succeeded since it was): the campaign cannot go on."""
        return all(s.retry_at_s is not None for s in self._stations.values())

    def next_retry_s(self) -> float | None:
        """The earliest time a set-aside station gets its trial (None: none is set aside)."""
        due = [s.retry_at_s for s in self._stations.values() if s.retry_at_s is not None]
        return min(due, default=None)

    def health(self, now_s: float) -> Mapping[str, StationHealth]:
        return {
            sid: StationHealth(
                station=sid,
                state=self.state(sid, now_s),
                failures_in_a_row=s.failures,
                last_failure=s.last_failure,
                set_aside_at_s=s.set_aside_at_s,
                retry_at_s=s.retry_at_s,
            )
            for sid, s in self._stations.items()
        }
