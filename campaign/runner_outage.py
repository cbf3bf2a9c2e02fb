"""What an outage of the campaign's data store does to the loop: wait, write again, or give up on a stop.

No sample is prepared that could not be recorded: before each sample the loop waits
until the store answers (`StoreOutage.store_answers`, which has the embedded server
restarted), and a write that fails because the store went away is tried again once
it is back (`durably`). A user who stops the campaign while the store is down stops
it: the loop ends with `STOPPED_IN_OUTAGE`, and the final drain lets the writers give
up (they keep what they could not write under ``unwritten/``) rather than wait for ever.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from tandem.store_guard import StoreGuard, is_store_unreachable

#: the stop reason of a campaign stopped (Ctrl-C) while it waited for its data store to answer
STOPPED_IN_OUTAGE = "stopped by the user while the data store did not answer"
_T = TypeVar("_T")


class StoreOutage:
    """The loop's side of the store guard (`store` None: no store to guard, nothing ever waits)."""

    def __init__(self, store: StoreGuard | None, stop_requested: Callable[[], bool]) -> None:
        self.store = store
        self.stop_requested = stop_requested

    def store_answers(self) -> bool:
        """Wait until the data store answers (restarting the embedded server); False if stopped meanwhile."""
        return self.store is None or self.store.wait_for_store(self.stop_requested)

    def durably(self, write: Callable[[], _T]) -> _T:
        """`write()`, tried again each time the store is back after an outage (not after other errors)."""
        while True:
            try:
                return write()
            except Exception as exc:
                if not is_store_unreachable(exc) or not self.store_answers():
                    raise

    def give_up_if_stopped(self) -> None:
        """Stopped while the store is down: the writers give up, keeping what they could not write."""
        if self.stop_requested() and self.store is not None and self.store.is_down:
            self.store.close()
