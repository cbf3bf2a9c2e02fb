"""The agent daemon's settings, its fatal error, and the back-off it waits out outages with.

`DaemonSettings` come from the daemon file (`tandem agent run`): queue depth, polling,
approval, retries, back-off, when an unanswering station is reported set aside, each
station's sample limit and its circuit breaker. `OutageBackoff` tracks one outage (of a
station or of the data store) under those settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tandem.breaker import BreakerSettings
from tandem.errors import TandemError


class DaemonError(TandemError, RuntimeError):
    """The daemon cannot go on (bad wiring, not a passing outage)."""


@dataclass(frozen=True)
class DaemonSettings:
    #: items each station should have queued or running (plus suggestions awaiting approval)
    queue_depth: int = 2
    #: seconds between looks at the queues and the results
    poll_interval_s: float = 1.0
    #: suggestions wait for `tandem agent approve` / `deny` before they are queued
    approval: bool = False
    #: how many times a decision is tried in all (1: a failed sample is not retried)
    max_attempts: int = 1
    #: back-off after an outage: first wait, growth factor, longest wait (seconds)
    backoff_initial_s: float = 0.5
    backoff_factor: float = 2.0
    backoff_max_s: float = 30.0
    #: a station unanswered for this long is reported as set aside (it is still asked, with back-off)
    set_aside_after_s: float = 10.0
    #: samples (measured or open) a station may take in all, None: no limit of its own (its beamtime share)
    max_samples_per_station: int | None = None
    #: when a station whose samples keep failing is set aside, and for how long (the campaign's `faults`;
    #: seconds of the daemon's clock, which is wall-clock time outside tests)
    breaker: BreakerSettings = field(default_factory=BreakerSettings)

    def __post_init__(self) -> None:
        if self.queue_depth < 1 or self.max_attempts < 1:
            raise DaemonError("queue_depth and max_attempts must be at least 1")
        if self.poll_interval_s <= 0 or self.backoff_initial_s <= 0 or self.backoff_max_s <= 0:
            raise DaemonError("poll_interval_s and the back-off times must be positive seconds")


@dataclass
class OutageBackoff:
    """One outage: how many tries failed, when to try next, since when, and the last error."""

    settings: DaemonSettings
    failures: int = 0
    next_try: float = 0.0
    down_since: float | None = None
    last_error: str | None = None

    def failed(self, error: BaseException, now: float) -> float:
        wait = min(
            self.settings.backoff_max_s,
            self.settings.backoff_initial_s * self.settings.backoff_factor**self.failures,
        )
        self.failures += 1
        self.next_try = now + wait
        self.down_since = self.down_since or now
        self.last_error = f"{type(error).__name__}: {error}"
        return wait

    def ok(self) -> None:
        self.failures, self.next_try, self.down_since, self.last_error = 0, 0.0, None, None

    def ready(self, now: float) -> bool:
        return now >= self.next_try
