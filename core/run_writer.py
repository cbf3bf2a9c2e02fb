"""How runs get into the catalog: the Bluesky `TiledWriter`, subscribed to a RunEngine.

Runs are written by `bluesky_tiled_plugins.TiledWriter` into the `raw` container
(`tandem.catalog_layout`) and read back through `tandem.catalog.Catalog`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from tandem.catalog_layout import raw_runs_node
from tandem.document_queue import DocumentCallback

if TYPE_CHECKING:
    from bluesky import RunEngine
    from tiled.client.container import Container

__all__ = ["WRITER_BATCH_SIZE", "subscribe_tiled_writer", "tiled_writer"]

#: Events the writer collects before it sends them. One: every frame is in Tiled as
#: soon as it is taken, so a run that dies (or a process that is killed) loses at most
#: the frame in flight, and a run can be watched while it runs. The writer sends
#: whatever is left when the run closes, so a closed run is always complete.
WRITER_BATCH_SIZE = 1


def tiled_writer(
    client: Container, *, batch_size: int = WRITER_BATCH_SIZE, backup_directory: str | None = None
) -> DocumentCallback:
    """The callback that writes runs to the catalog of `client` (see `subscribe_tiled_writer`)."""
    from bluesky_tiled_plugins import TiledWriter

    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive number of events, got {batch_size}")
    writer: DocumentCallback = TiledWriter(
        raw_runs_node(client), batch_size=batch_size, backup_directory=backup_directory
    )
    return writer


def subscribe_tiled_writer(
    run_engine: RunEngine,
    client: Container,
    *,
    batch_size: int = WRITER_BATCH_SIZE,
    backup_directory: str | None = None,
    wrap: Callable[[DocumentCallback], DocumentCallback] | None = None,
) -> int:
    """Write every run of `run_engine` to the catalog of `client`; return the subscription token.

    The one place where a RunEngine is tied to Tiled (IPython profile, campaign
    runner, queue-server startup). The writer runs inside the RunEngine's
    callbacks, so when `RE(plan)` returns the run is closed in Tiled and readable;
    an error writing to Tiled fails the plan rather than losing data silently
    (unless `run_engine.ignore_callback_exceptions` is set). With
    `backup_directory`, a run that could not be written is kept there as JSON lines.
    `wrap` wraps the writer callback (for example to time it).
    """
    writer = tiled_writer(client, batch_size=batch_size, backup_directory=backup_directory)
    token: int = run_engine.subscribe(wrap(writer) if wrap is not None else writer)
    return token
