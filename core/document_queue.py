"""A document callback run in a thread of its own, in order, that holds on through a store outage.

A RunEngine calls its callbacks synchronously: with the Tiled writer among them, every document
waits for its HTTP requests. Subscribed through a `DocumentQueue`, the RunEngine only hands the
document over and goes on; the writer catches up in the background.

When the data store stops answering (`tandem.store_guard.is_store_unreachable`), the queue does not
drop the document: it waits for the store (through a `StoreGuard`, which also restarts an embedded
server, or by its own back-off) and hands the same document to the callback again, keeping every
later one behind it. One warning says when an outage starts, one info line when it ends; no
traceback per retry. The callback must therefore accept a document again after a call that failed
on an unreachable store: `tandem.replaying_writer.ReplayingTiledWriter` does (the bare Bluesky
`TiledWriter` does not: it would store an event's row twice). Calls handed over with `submit` are
retried the same way, so they must be idempotent too.

Any other error (a document the store refuses) is logged with its traceback and raised by the next
barrier, as before; later documents are still processed.

A queue stuck on a dead store does not hold up its owner for ever: `abort()`, or `close()` with a
timeout or a stop predicate, gives up, and the documents not written are reported
(`UnwrittenDocumentsError`: how many, of which runs), never dropped silently.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, InvalidStateError
from concurrent.futures import wait as wait_futures
from typing import Any

from tandem.errors import TandemError
from tandem.store_guard import (
    Backoff,
    StopSignal,
    StoreUnavailableError,
    is_store_unreachable,
    stop_predicate,
)
from tandem.store_guard import wait_or_stop as _wait_or_stop

__all__ = [
    "DocumentCallback",
    "DocumentQueue",
    "DocumentQueueError",
    "StoreWaiter",
    "UnwrittenDocumentsError",
]

logger = logging.getLogger(__name__)

#: what a RunEngine calls with each document: ``callback(name, doc)``
DocumentCallback = Callable[[str, Mapping[str, Any]], Any]

#: `StoreGuard.wait_for_store`: returns once the store answers (True) or the predicate says stop (False)
StoreWaiter = Callable[[Callable[[], bool]], bool]

#: how often a waiting `close` looks at its stop predicate (seconds)
_POLL_S = 0.1

_BARRIER = "__barrier__"
_CALL = "__call__"
_STOP = "__stop__"


def _settle(future: Future[float], outcome: float | BaseException) -> None:
    """Resolve `future` unless it is already: after an abort, the worker and the closer may race to it."""
    with contextlib.suppress(InvalidStateError):
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


class DocumentQueueError(TandemError, RuntimeError):
    """Documents handed to a `DocumentQueue` could not be processed (the first error is the cause)."""


class UnwrittenDocumentsError(DocumentQueueError):
    """The queue gave up on documents the store did not take; they are kept here, in order."""

    def __init__(self, queue_name: str, documents: list[tuple[str, Any, str | None]], calls: int) -> None:
        self.documents: tuple[tuple[str, Mapping[str, Any]], ...] = tuple((n, d) for n, d, _ in documents)
        self.runs: tuple[str, ...] = tuple(dict.fromkeys(r for _, _, r in documents if r is not None))
        self.calls = calls
        counts: dict[str, int] = {}
        for name, _ in self.documents:
            counts[name] = counts.get(name, 0) + 1
        kinds = ", ".join(f"{n} {k}" for k, n in counts.items()) or "none"
        runs = ", ".join(self.runs) or "none"
        super().__init__(
            f"{queue_name}: {len(self.documents)} document(s) ({kinds}) of {len(self.runs)} run(s) "
            f"and {calls} write call(s) were not written to the data store, which did not answer; "
            f"runs affected: {runs}"
        )


class DocumentQueue:
    """Runs a document callback in a thread of its own, in document order, so that the caller need not wait.

    The queue holds at most `max_documents` (frames are megabytes): a store that falls behind slows
    the RunEngine down rather than filling the memory. `barrier()` says when everything handed over
    so far has been processed, and how long that took; an error of the callback is logged and raised
    by the next barrier (and `close`), so nothing fails silently. `submit(fn)` runs a call of the
    caller's in the same order (a write that must land before the next run's documents).

    `wait_for_store` (a `StoreGuard.wait_for_store`) is asked before a write that failed on an
    unreachable store is tried again; without it the queue backs off by itself (`backoff`). With
    `retry_unreachable=False` such a failure is an error like any other.
    """

    def __init__(
        self,
        callback: DocumentCallback,
        *,
        max_documents: int = 64,
        name: str = "documents",
        wait_for_store: StoreWaiter | None = None,
        retry_unreachable: bool = True,
        backoff: Backoff | None = None,
    ) -> None:
        if max_documents < 1:
            raise ValueError(f"max_documents must be a positive number, got {max_documents}")
        self.callback = callback
        self.name = name
        self.wait_for_store = wait_for_store
        self.retry_unreachable = retry_unreachable
        self.backoff = backoff or Backoff()
        self._queue: queue.Queue[tuple[str, Any, str | None]] = queue.Queue(maxsize=max_documents)
        self._errors: list[BaseException] = []
        self._busy_s = 0.0
        self._closed = False
        self._aborted = threading.Event()
        self._lock = threading.Lock()  # the unwritten list: the worker and an aborting closer both add to it
        self._unwritten: list[tuple[str, Any, str | None]] = []
        self._unwritten_calls = 0
        self._unwritten_ids: set[int] = (
            set()
        )  # the item in flight may be given up by the worker and the closer
        self._outage_since: float | None = None
        self._current: tuple[str, Any, str | None] | None = None
        # which run each descriptor belongs to, so that an unwritten event names its run
        self._descriptor_runs: dict[str, str] = {}
        self._thread = threading.Thread(target=self._work, name=f"{name}-queue", daemon=True)
        self._thread.start()

    @property
    def in_outage(self) -> bool:
        """Whether the queue is holding documents for a store that does not answer."""
        return self._outage_since is not None

    @property
    def aborted(self) -> bool:
        return self._aborted.is_set()

    def __call__(self, name: str, doc: Mapping[str, Any]) -> None:
        if self._closed:
            raise DocumentQueueError(f"{self.name}: a document arrived after the queue was closed")
        self._queue.put((name, doc, self._run_of(name, doc)))

    def submit(self, call: Callable[[], Any]) -> None:
        """Run `call` in the queue's thread after the documents handed over before it (errors: as theirs)."""
        if self._closed:
            raise DocumentQueueError(f"{self.name}: a call arrived after the queue was closed")
        self._queue.put((_CALL, call, None))

    def barrier(self) -> Future[float]:
        """A future that resolves once every document handed over before this call has been processed.

        Its result is the seconds the callback spent on the documents since the previous barrier;
        its exception, the first error among them (`DocumentQueueError`), or `UnwrittenDocumentsError`
        once the queue has given up on some.
        """
        done: Future[float] = Future()
        if self._closed:  # everything was processed (or given up on) when it closed
            done.set_result(0.0)
            return done
        self._queue.put((_BARRIER, done, None))
        return done

    def flush(self, timeout_s: float | None = None) -> float:
        """Wait until every document handed over has been processed; raise the first error among them."""
        return self.barrier().result(timeout=timeout_s)

    def abort(self) -> None:
        """Stop retrying and writing: what is not yet written is reported by the barriers and `close`."""
        self._aborted.set()

    def close(self, timeout_s: float | None = None, *, stop_requested: StopSignal | None = None) -> None:
        """Process what is queued, stop the thread, and raise the first error not yet raised.

        Gives up (`abort`) when `timeout_s` passes, or when `stop_requested` says so while the store
        does not answer (a Ctrl-C during an outage); it then raises `UnwrittenDocumentsError` naming
        what was not written. With the store answering, a stop request still lets the queue drain.
        """
        if self._closed:
            return
        stop = stop_predicate(stop_requested)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s

        def give_up() -> bool:
            late = deadline is not None and time.monotonic() >= deadline
            if late or (stop() and self.in_outage):
                self.abort()
            return self.aborted

        last: Future[float] = Future()
        while not self._put((_BARRIER, last, None), give_up):
            pass
        self._closed = True
        while not last.done() and not give_up():
            wait_futures([last], timeout=_POLL_S)
        if not last.done():
            self._give_up_on_queued()  # may release `last` itself, on its way through the queue
            _settle(last, self._unwritten_error() or DocumentQueueError(f"{self.name}: gave up"))
        self._put((_STOP, None, None), lambda: True)
        if not self.aborted:
            self._thread.join(timeout=None if deadline is None else max(deadline - time.monotonic(), 0))
        last.result()

    # -- the worker -------------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            try:
                name, item, run = self._queue.get(timeout=_POLL_S if self.aborted else None)
            except queue.Empty:
                return  # aborted and nothing more to hand on
            if name == _STOP:
                return
            if name == _BARRIER:
                self._release(item)
                continue
            if self.aborted:
                self._add_unwritten(name, item, run)
                continue
            started = time.perf_counter()
            self._current = (name, item, run)
            try:
                self._process(name, item, run)
            finally:
                self._current = None
                self._busy_s += time.perf_counter() - started

    def _process(self, name: str, item: Any, run: str | None) -> None:
        delays = self.backoff.delays()
        tries = 0
        while True:
            tries += 1
            try:
                item() if name == _CALL else self.callback(name, item)
            except Exception as error:
                if not (self.retry_unreachable and is_store_unreachable(error)):
                    logger.exception("%s: the %s document could not be processed", self.name, name)
                    self._errors.append(error)
                    return
                self._note_outage(error)
                if self.aborted or not self._wait(tries, delays):
                    self._add_unwritten(name, item, run)
                    return
            else:
                if self._outage_since is not None:
                    held = time.monotonic() - self._outage_since
                    self._outage_since = None
                    logger.info(
                        "%s: the data store took the held documents again after %.1f s", self.name, held
                    )
                return

    def _wait(self, tries: int, delays: Any) -> bool:
        """Wait before trying again; False when the queue gave up meanwhile.

        The first retry goes as soon as the guard says the store answers; a write that fails again
        though the store answers (a stale connection, a 503) backs off between tries all the same.
        """
        if (tries > 1 or self.wait_for_store is None) and _wait_or_stop(next(delays), self._aborted.is_set):
            return False
        if self.wait_for_store is not None:
            try:
                self.wait_for_store(self._aborted.is_set)
            except StoreUnavailableError as error:
                logger.error("%s: giving up on the data store: %s", self.name, error)
                self.abort()
        return not self.aborted

    def _note_outage(self, error: Exception) -> None:
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            logger.warning(
                "%s: the data store does not answer (%s: %s); holding %d document(s), retrying until it does",
                self.name,
                type(error).__name__,
                str(error).splitlines()[0] if str(error) else "",
                self._queue.qsize() + 1,
            )

    def _add_unwritten(self, name: str, item: Any, run: str | None) -> None:
        with self._lock:
            if id(item) in self._unwritten_ids:
                return
            self._unwritten_ids.add(id(item))
            if name == _CALL:
                self._unwritten_calls += 1
            else:
                self._unwritten.append((name, item, run))

    def _give_up_on_queued(self) -> None:
        """Take what the worker has not reached (it may be stuck in a request) into the unwritten list."""
        current = self._current
        if current is not None:
            self._add_unwritten(*current)  # in flight: it may yet land, but nobody will know
        while True:
            try:
                name, item, run = self._queue.get_nowait()
            except queue.Empty:
                return
            if name == _BARRIER:
                self._release(item)
            elif name != _STOP:
                self._add_unwritten(name, item, run)

    def _unwritten_error(self) -> UnwrittenDocumentsError | None:
        with self._lock:
            if not self._unwritten and not self._unwritten_calls:
                return None
            return UnwrittenDocumentsError(self.name, list(self._unwritten), self._unwritten_calls)

    def _release(self, done: Future[float]) -> None:
        errors, self._errors = self._errors, []
        busy, self._busy_s = self._busy_s, 0.0
        unwritten = self._unwritten_error()
        if unwritten is not None:
            if errors:
                unwritten.__cause__ = errors[0]
            _settle(done, unwritten)
        elif errors:
            first = f"{type(errors[0]).__name__}: {errors[0]}"
            failure = DocumentQueueError(f"{self.name}: {len(errors)} document(s) failed; the first: {first}")
            failure.__cause__ = errors[0]
            _settle(done, failure)
        else:
            _settle(done, busy)

    # -- the caller's side ------------------------------------------------------------------------

    def _put(self, entry: tuple[str, Any, str | None], give_up: Callable[[], bool]) -> bool:
        """Queue `entry`, waiting for room; False if `give_up()` says so first."""
        while True:
            try:
                self._queue.put(entry, timeout=_POLL_S)
                return True
            except queue.Full:
                if give_up():
                    return False

    def _run_of(self, name: str, doc: Mapping[str, Any]) -> str | None:
        """The uid of the run a document belongs to, for the report of what was not written."""
        if name == "start":
            return str(doc.get("uid"))
        if name == "descriptor":
            run = str(doc.get("run_start"))
            self._descriptor_runs[str(doc.get("uid"))] = run
            return run
        if name == "stop":
            run = str(doc.get("run_start"))
            self._descriptor_runs = {d: r for d, r in self._descriptor_runs.items() if r != run}
            return run
        if "run_start" in doc:
            return str(doc["run_start"])
        return self._descriptor_runs.get(str(doc.get("descriptor")))
