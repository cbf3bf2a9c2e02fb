"""The layout of the Tiled catalog: which container at its root holds what, found or created by key.

Layout of the catalog (the root of the server)::

    raw/                    Bluesky runs as the RunEngine wrote them (spec CatalogOfBlueskyRuns 3.0)
      <run uid>/            one BlueskyRun: metadata {"start": ..., "stop": ...}
        primary/            one node per stream; arrays (frames) and a table of scalars

Analysis results and decision records live in sibling containers of `raw`, linked
to runs by uid (issues 4 and 5; `tandem.analysis.store`, `tandem.agents.records`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tiled.client.container import Container

__all__ = ["RAW", "raw_runs_node"]

#: the container of raw Bluesky runs at the root of the catalog
RAW = "raw"


def raw_runs_node(client: Container) -> Container:
    """The `raw` container of the catalog, created (with the Bluesky catalog spec) if missing."""
    from tiled.structures.core import Spec

    if RAW in client:
        return client[RAW]
    try:
        return client.create_container(RAW, specs=[Spec("CatalogOfBlueskyRuns", version="3.0")])
    except Exception:
        # another process may have created it between our look and our write
        if RAW in client:
            return client[RAW]
        raise
