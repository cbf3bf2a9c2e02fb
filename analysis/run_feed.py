"""Which raw runs wait for analysis, found without reading the whole catalog at every look.

A worker that follows a campaign looks for work every fraction of a second. Listing every run and
every analysed node at each look costs in proportion to the campaign's length, so each sample cost
the data store more the longer a campaign ran (bench/README.md, scale-out). `RunFeed` reads the
raw runs in the order they were made, from where its last look ended, so each look reads only the
runs made since; it keeps the sample runs it has not yet seen analysed (still open, or waiting for
a worker) and looks at only those again, by uid. A run leaves that list once its analysed node is
complete, whoever wrote it.
"""

from __future__ import annotations

from tandem.analysis.raw_runs import SCATTERING_PLANS
from tandem.analysis.store import AnalysisStore
from tandem.catalog import Catalog, RunNotFoundError


class RunFeed:
    """The sample runs of one catalog that are ready for analysis, as a follower sees them."""

    def __init__(self, catalog: Catalog, store: AnalysisStore) -> None:
        self.catalog = catalog
        self.store = store
        self._read = 0  # runs already read, in the order they were made
        self._waiting: dict[str, None] = {}  # sample runs not yet seen analysed, oldest first

    def pending(self) -> list[str]:
        """Closed sample runs without a complete analysed node, oldest first."""
        for run in self.catalog.made_since(self._read):
            self._read += 1
            if run.plan_name in SCATTERING_PLANS:
                self._waiting[run.uid] = None
        ready = []
        for uid in list(self._waiting):
            if self.store.is_done(uid):
                del self._waiting[uid]
                continue
            try:
                closed = self.catalog.run(uid).is_closed  # read again: it may have closed since
            except RunNotFoundError:
                del self._waiting[uid]  # removed from the catalog: nothing to analyse
                continue
            if closed:
                ready.append(uid)
        return ready
