"""Keeping a campaign off a data store that does not answer, and bringing an embedded one back.

Every record of a campaign goes to Tiled (DESIGN.md). When the store stops answering, a sample
prepared now could not be recorded: the campaign loop asks `StoreGuard.wait_for_store` before it
prepares each sample, and the background writers (`tandem.document_queue.DocumentQueue`) ask it before
they retry a write. The guard

- returns at once while the store answers (one health request);
- otherwise reports the outage once (a log line and the `report` callback, no traceback),
  restarts the embedded server if the caller owns one (same port, directory and key, so every
  Tiled client in the process works again), else waits with bounded exponential back-off;
- returns True when the store answers again, False as soon as a stop is requested (Ctrl-C), and
  raises `StoreUnavailableError` once `deadline_s` has passed (None: it waits for ever).

The guard is shared by the loop and the writer threads: one of them restarts the server, all of
them see it back. A restart runs in a thread of its own, so a waiter still notices a stop while
the server is starting (that takes seconds).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from tandem.errors import TandemError
from tandem.tiled_endpoint import TiledServerError

if TYPE_CHECKING:
    from tandem.tiled_endpoint import TiledEndpoint
    from tandem.tiled_server import EmbeddedTiledServer

__all__ = [
    "Backoff",
    "InvalidBackoffError",
    "StopSignal",
    "StoreGuard",
    "StoreUnavailableError",
    "is_store_unreachable",
    "stop_predicate",
]

logger = logging.getLogger(__name__)

#: what says "stop now": a predicate (the runner's stop flag) or an event
StopSignal = Callable[[], bool] | threading.Event

#: HTTP statuses that say "not now" rather than "never": rate limits and a proxy or server that is down
#: or restarting. A 500 is not among them: a server that answers 500 to a request answers it again.
TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})

#: how often a waiter looks at its stop signal while it waits (seconds): a Ctrl-C is seen this fast
_STOP_POLL_S = 0.1


class StoreUnavailableError(TandemError, RuntimeError):
    """The data store did not answer within the time the caller allowed."""


class InvalidBackoffError(TandemError, ValueError):
    """Back-off settings that would not wait, or would never grow."""


def is_store_unreachable(error: BaseException) -> bool:
    """Whether `error` (or an error it was raised from) says the store could not be reached.

    Tiled's client (httpx) raises `httpx.ConnectError` when nothing listens on the port,
    `ReadError`/`RemoteProtocolError` when the server died mid-request, timeouts when it hangs,
    and `httpx.HTTPStatusError` for 502/503/504/429. Those are worth retrying. A refused request
    (4xx: `tiled.client.utils.ClientError`), a 500, or an error in our own code is not: the same
    request would fail the same way, so it is reported instead of retried for ever.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, httpx.UnsupportedProtocol | httpx.LocalProtocolError):
            return False  # a bad URL or header: our mistake, not the store's absence
        if isinstance(current, httpx.TransportError):
            return True
        if isinstance(current, httpx.HTTPStatusError):
            return current.response.status_code in TRANSIENT_STATUSES
        current = current.__cause__ or current.__context__
    return False


def stop_predicate(stop: StopSignal | None) -> Callable[[], bool]:
    """`stop` as a predicate (None: never stop)."""
    if stop is None:
        return lambda: False
    if isinstance(stop, threading.Event):
        return stop.is_set
    return stop


@dataclass(frozen=True)
class Backoff:
    """Exponential back-off between tries: `initial_s`, times `factor` each try, at most `max_s`."""

    initial_s: float = 0.25
    factor: float = 2.0
    max_s: float = 5.0

    def __post_init__(self) -> None:
        if not (self.initial_s > 0 and self.max_s >= self.initial_s and self.factor >= 1):
            raise InvalidBackoffError(
                "back-off needs initial_s > 0, max_s >= initial_s and factor >= 1 "
                f"(got initial_s={self.initial_s}, factor={self.factor}, max_s={self.max_s})"
            )

    def delays(self) -> Iterator[float]:
        """The waits before each next try, for ever."""
        delay = self.initial_s
        while True:
            yield delay
            delay = min(delay * self.factor, self.max_s)


def wait_or_stop(seconds: float, stop: Callable[[], bool], wake: threading.Event | None = None) -> bool:
    """Sleep `seconds`, looking at `stop` (and `wake`) every tenth of a second; whether to stop."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        if stop():
            return True
        if wake is not None:
            if wake.wait(min(left, _STOP_POLL_S)):
                return True
        else:
            time.sleep(min(left, _STOP_POLL_S))
    return stop()


class StoreGuard:
    """Waits out an outage of the data store at `endpoint`, restarting `server` if the caller owns it.

    >>> guard = StoreGuard(server.endpoint, server=server)  # doctest: +SKIP
    >>> if not guard.wait_for_store(stop_requested=lambda: runner.stopping):  # doctest: +SKIP
    ...     return "stopped by the user while the data store was down"

    `report` is called with one line when an outage starts and one when it ends (default: the
    lines are only logged). `outages` counts the outages seen so far: a writer that sees it change
    during a run knows the run met one.
    """

    def __init__(
        self,
        endpoint: TiledEndpoint,
        *,
        server: EmbeddedTiledServer | None = None,
        backoff: Backoff | None = None,
        deadline_s: float | None = None,
        probe_timeout_s: float = 2.0,
        report: Callable[[str], None] | None = None,
    ) -> None:
        if deadline_s is not None and deadline_s < 0:
            raise StoreUnavailableError(f"deadline_s must be >= 0 seconds or None, got {deadline_s}")
        if probe_timeout_s <= 0:
            raise StoreUnavailableError(f"probe_timeout_s must be > 0 seconds, got {probe_timeout_s}")
        self.endpoint = endpoint
        self.server = server
        self.backoff = backoff or Backoff()
        self.deadline_s = deadline_s
        self.probe_timeout_s = probe_timeout_s
        self.report = report
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._down_since: float | None = None
        self._outages = 0
        self._restart_errors: set[str] = set()
        self._restarting: Future[object] | None = None
        self._restarter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-restart")

    def __repr__(self) -> str:
        state = "down" if self._down_since is not None else "up"
        owned = " (owns its server)" if self.server is not None else ""
        return f"<StoreGuard {self.endpoint.url} {state}{owned}>"

    @property
    def outages(self) -> int:
        """How many outages this guard has seen (one per stretch of not answering)."""
        return self._outages

    @property
    def is_down(self) -> bool:
        """Whether an outage is under way (seen, and not yet seen to end)."""
        return self._down_since is not None

    def answers(self) -> bool:
        """Whether the store answers its health check now (and, if owned, its process runs)."""
        if self.server is not None and not self.server.alive():
            return False  # alive() also reaps a server that died
        return self.endpoint.is_healthy(timeout_s=self.probe_timeout_s)

    def wait_for_store(self, stop_requested: StopSignal | None = None) -> bool:
        """Return True once the store answers: at once if it does; False as soon as a stop is requested.

        Raises `StoreUnavailableError` when `deadline_s` passes first. Safe to call from several
        threads at once: one outage is reported once, and the server restarted by one of them.
        """
        stop = stop_predicate(stop_requested)
        if self._closed.is_set():
            return False
        if self.answers():
            self._mark_up()
            return True
        self._mark_down()
        started = time.monotonic()
        for delay in self.backoff.delays():
            if self._closed.is_set() or stop():
                return False
            self._restart_if_dead()
            if self.answers():
                self._mark_up()
                return True
            waited = time.monotonic() - started
            if self.deadline_s is not None and waited >= self.deadline_s:
                raise StoreUnavailableError(
                    f"the data store at {self.endpoint.url} has not answered for {waited:.0f} s "
                    f"(the limit is {self.deadline_s:g} s)"
                    + (f"; its server log: {self.server.log_path}" if self.server is not None else "")
                )
            pause = delay if self.deadline_s is None else min(delay, max(self.deadline_s - waited, 0.0))
            if wait_or_stop(pause, stop, self._closed):
                return False
        raise AssertionError("unreachable")  # pragma: no cover -- delays() never ends

    def close(self) -> None:
        """Wake every waiter (they return False) and restart nothing more: the owner is shutting down."""
        self._closed.set()
        self._restarter.shutdown(wait=True)

    def _restart_if_dead(self) -> None:
        server = self.server
        if server is None or self._closed.is_set():
            return
        with self._lock:
            if self._restarting is not None and not self._restarting.done():
                return  # another waiter's restart is under way
            if server.alive():
                return  # up, or hung: a hung server may be busy (a long write); back off and ask again
            status = server.exit_status
            logger.warning(
                "the Tiled server for %s has died (exit status %s); restarting it on %s",
                server.directory,
                status,
                self.endpoint.url,
            )
            try:
                self._restarting = self._restarter.submit(self._restart, server)
            except RuntimeError:  # closed meanwhile: the owner stops the server
                self._restarting = None

    def _restart(self, server: EmbeddedTiledServer) -> None:
        try:
            server.restart()
        except TiledServerError as error:
            message = str(error).splitlines()[0]
            if message not in self._restart_errors:  # once each: the waiters try again after a back-off
                self._restart_errors.add(message)
                logger.warning("restarting the Tiled server failed (tandem tries again): %s", message)

    def _mark_down(self) -> None:
        with self._lock:
            if self._down_since is not None:
                return
            self._down_since = time.monotonic()
            self._outages += 1
        owned = "; restarting the embedded server" if self.server is not None else "; retrying with back-off"
        self._say(
            logging.WARNING,
            f"the data store at {self.endpoint.url} does not answer: measuring is paused{owned}",
        )

    def _mark_up(self) -> None:
        with self._lock:
            since, self._down_since = self._down_since, None
            self._restart_errors.clear()
        if since is not None:
            waited = time.monotonic() - since
            self._say(logging.INFO, f"the data store answers again after {waited:.1f} s: measuring goes on")

    def _say(self, level: int, line: str) -> None:
        logger.log(level, line)
        if self.report is not None:
            try:
                self.report(line)
            except Exception:  # a broken progress display must not stop the campaign
                logger.exception("the store guard's report callback failed")
