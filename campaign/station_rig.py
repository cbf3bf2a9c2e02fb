"""A station's live rig, twin or real alike: devices, robot, cell loader, clock, RunEngine and Tiled writer.

`StationRig` is what the campaign runner, the IPython profile and the queue-server
startup run samples on; `Lab` is the running services of a campaign's stations. The
twin builds both in `tandem.campaign.rig`, a real lab on EPICS in
`tandem.campaign.epics_lab`; what they share is here, so that neither needs the other
(and a real station's process loads no line of the twin): the data store a lab starts
(`open_store`), a station's RunEngine writing to it (`station_run_engine`), and closing
its writer so that no document is lost (`close_writer`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from bluesky import RunEngine

from tandem.campaign.config import CampaignStation
from tandem.catalog_layout import raw_runs_node
from tandem.document_queue import DocumentCallback, DocumentQueue, UnwrittenDocumentsError
from tandem.protocols import StationDevices, StationTime
from tandem.replaying_writer import ReplayingTiledWriter
from tandem.robots.cell_loader import CellLoader
from tandem.robots.liquid_handler import LiquidHandler
from tandem.run_writer import subscribe_tiled_writer
from tandem.stations import device_names
from tandem.store_guard import StopSignal, StoreGuard
from tandem.tiled_endpoint import TiledEndpoint
from tandem.tiled_server import EmbeddedTiledServer

if TYPE_CHECKING:
    from tandem.analysis.pipeline_settings import StationCalibration

logger = logging.getLogger(__name__)


@dataclass
class StationRig:
    """Everything that runs samples at one station. Live objects, not values."""

    id: str
    #: the station as the campaign knows it: its file entry (`spec`), deck, instrument, solvent
    campaign_station: CampaignStation
    #: its devices (detector, shutter, monitor, ...), by which plans run
    station: StationDevices
    #: the twin's virtual clock, or a real station's wall clock
    clock: StationTime
    liquid_handler: LiquidHandler
    cell_loader: CellLoader
    RE: RunEngine
    #: the Tiled writer when it runs in the background (`barrier()` says when the runs are in Tiled)
    writer: DocumentQueue | None = None

    def write_in_order(self, write: Callable[[], object]) -> None:
        """Call `write` (a write to Tiled) in order with the station's runs (at once if not queued)."""
        if self.writer is None:
            write()
        else:
            self.writer.submit(write)

    def devices(self) -> dict[str, Any]:
        """The devices by the names plans (and the queue server) know them by."""
        names = device_names(self.id)
        return {
            names.station: self.station,
            names.liquid_handler: self.liquid_handler,
            names.cell_loader: self.cell_loader,
        }


class Lab(Protocol):
    """The running services of a campaign's stations, as the runner uses them."""

    @property
    def rigs(self) -> Mapping[str, StationRig]: ...

    @property
    def store(self) -> StoreGuard | None:
        """The guard of the lab's data store (None: none is served)."""
        ...

    @property
    def tiled_client(self) -> Any: ...

    def calibrations(self) -> dict[str, StationCalibration]:
        """What turns each station's counts into 1/cm, by station id."""
        ...


@dataclass
class Store:
    """The data store a lab started: the embedded Tiled server, its endpoint and the guard of its outages."""

    endpoint: TiledEndpoint
    server: EmbeddedTiledServer
    guard: StoreGuard

    def client(self) -> Any:
        return self.endpoint.connect()


def open_store(
    stack: contextlib.ExitStack, data_directory: Path, report: Callable[[str], None] | None = None
) -> Store:
    """Serve the catalog under `data_directory/tiled` until `stack` closes, guarded against outages."""
    # the store dies with the campaign even on kill -9, so that --resume can start it again
    server = EmbeddedTiledServer(data_directory / "tiled", die_with_parent=True)
    endpoint = stack.enter_context(server)
    # closed before the server stops (the stack unwinds backwards): no restart while stopping
    guard = StoreGuard(endpoint, server=server, report=report)
    stack.callback(guard.close)
    return Store(endpoint, server, guard)


def station_run_engine(
    station_id: str,
    tiled_client: Any | None,
    *,
    wrap_writer: Callable[[DocumentCallback], DocumentCallback] | None = None,
    background_writer: bool = False,
    store: StoreGuard | None = None,
) -> tuple[RunEngine, DocumentQueue | None]:
    """A station's RunEngine writing to `tiled_client` (None: nowhere), and its background writer.

    With `background_writer`, runs are written to Tiled by a thread of their own (the rig's
    `writer`): `RE(plan)` returns before its run is in Tiled, and whoever needs it there waits
    on `rig.writer.barrier()`. The writer must be closed (`close_writer`) when the rig is done with.
    It holds its documents through a store outage, waiting on `store` (which restarts an embedded
    server), and stores each run exactly once however often it is interrupted.
    """
    # no signal handlers: several RunEngines share the process, and the CLI owns Ctrl-C
    run_engine = RunEngine({}, context_managers=[])
    queued: DocumentQueue | None = None
    if tiled_client is not None and background_writer:
        outages = None if store is None else (lambda: store.outages)
        inner = ReplayingTiledWriter(raw_runs_node(tiled_client), outages=outages)
        queued = DocumentQueue(
            wrap_writer(inner) if wrap_writer else inner,
            name=f"{station_id} Tiled writer",
            wait_for_store=None if store is None else store.wait_for_store,
        )
        run_engine.subscribe(queued)
    elif tiled_client is not None:
        subscribe_tiled_writer(run_engine, tiled_client, wrap=wrap_writer)
    return run_engine, queued


def close_writer(rig: StationRig, stop_requested: StopSignal | None, data_directory: Path | None) -> None:
    """Write what the rig's background writer still holds; what the store will not take is kept as a file."""
    if rig.writer is None:
        return
    try:
        rig.writer.close(stop_requested=stop_requested)
    except UnwrittenDocumentsError as error:
        kept = _keep_unwritten(error, rig.id, data_directory)
        logger.error("%s%s", error, f"; the documents are kept in {kept}" if kept else "")
    except Exception:  # the error was logged as it happened; shutting down goes on
        logger.exception("the Tiled writer of %s did not finish cleanly", rig.id)


def _keep_unwritten(error: UnwrittenDocumentsError, station: str, data_directory: Path | None) -> Path | None:
    """Write the documents the store did not take as JSON lines (`name`, `doc`), so they can be replayed."""
    if data_directory is None or not error.documents:
        return None
    folder = data_directory / "unwritten"
    folder.mkdir(exist_ok=True)
    path = folder / f"{station}-{time.strftime('%Y%m%dT%H%M%S')}.jsonl"
    with path.open("w") as out:
        for name, doc in error.documents:
            out.write(json.dumps({"name": name, "doc": doc}, default=_jsonable) + "\n")
    return path


def _jsonable(value: Any) -> Any:
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars: frames, readings
    return tolist() if callable(tolist) else str(value)


__all__ = [
    "Lab",
    "StationRig",
    "Store",
    "close_writer",
    "open_store",
    "station_run_engine",
]
