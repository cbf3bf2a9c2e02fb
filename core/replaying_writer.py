"""A Tiled writer that may be handed a document again after a failure, and still stores each run once.

Bluesky's `TiledWriter` cannot retry a document. Per document (bluesky-tiled-plugins 2.0):
`start` creates the run's container (keyed by its uid: a second create is refused, 409);
`descriptor` creates the stream's container; `event` appends its row to an in-memory batch and,
with a batch of one, writes the frames with `write_array` or `patch(extend=True)` and the scalars
with `append_partition`, clearing the batch only after both; `stop` writes what is left, the stop
metadata, and closes the streams. So an event whose write failed half-way, handed over again,
appends its frame or its row twice, and the writer's batch keeps the failed row. Tiled's client
also retries requests by itself (stamina): a request the server carried out before it died is
sent again once the server is back, which can duplicate an appended frame without any error.

`ReplayingTiledWriter` keeps the documents of the run being written (a sample's run: a few
frames). After a failed call it rebuilds the run on the next one: it deletes what reached Tiled
of the run and writes all its documents again through a fresh `TiledWriter`, then the new one.
When a run met a store outage even without a failed call (the `outages` counter of the
`StoreGuard` moved during the run), its stop document rebuilds it too. Either way the run in
Tiled holds every document exactly once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tiled.client.container import Container

__all__ = ["ReplayingTiledWriter"]

logger = logging.getLogger(__name__)


class ReplayingTiledWriter:
    """A document callback writing runs to `raw` (the catalog's raw-runs container), safe to call again.

    `outages` (a `StoreGuard.outages` getter) counts the store's outages; a run during which it
    moved is rebuilt at its stop.
    """

    def __init__(
        self, raw: Container, *, batch_size: int = 1, outages: Callable[[], int] | None = None
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive number of events, got {batch_size}")
        self.raw = raw
        self.batch_size = batch_size
        self.outages = outages
        self.rebuilds = 0
        self._run: list[tuple[str, Mapping[str, Any]]] = []
        self._outages_at_start = 0
        self._broken = False
        self._writer = self._fresh_writer()

    def __call__(self, name: str, doc: Mapping[str, Any]) -> None:
        if name == "start":
            self._run = []
            self._outages_at_start = self._outage_count()
            if self._broken:  # the last run was given up on: the new one starts on a clean writer
                self._writer, self._broken = self._fresh_writer(), False
        again = bool(self._run) and self._run[-1][1] is doc
        if not again:
            self._run.append((name, doc))
        try:
            if self._broken:
                self._rebuild()
            else:
                self._writer(name, doc)
                if name == "stop" and self._outage_count() != self._outages_at_start:
                    self._rebuild()  # the store went away during the run: requests may have landed twice
        except Exception:
            self._broken = True
            raise
        if name == "stop":
            self._run = []

    def _outage_count(self) -> int:
        return 0 if self.outages is None else self.outages()

    def _fresh_writer(self) -> Callable[[str, Mapping[str, Any]], Any]:
        from bluesky_tiled_plugins import TiledWriter

        writer: Callable[[str, Mapping[str, Any]], Any] = TiledWriter(self.raw, batch_size=self.batch_size)
        return writer

    def _rebuild(self) -> None:
        """Delete what Tiled holds of the run, and write all its documents again."""
        self._broken = True
        if not self._run or self._run[0][0] != "start":
            raise RuntimeError("the documents of this run began before the writer saw its start")
        uid = str(self._run[0][1]["uid"])
        if uid in self.raw:
            # external_only=False: the run's frames and tables are the store's own files
            self.raw.delete_contents(uid, recursive=True, external_only=False)
        self._writer = self._fresh_writer()
        for name, doc in self._run:
            self._writer(name, doc)
        self._outages_at_start = self._outage_count()
        self._broken = False
        self.rebuilds += 1
        logger.info("run %s rewritten whole after a store outage (%d documents)", uid, len(self._run))
