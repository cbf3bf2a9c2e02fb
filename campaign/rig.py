"""A station's live rig on the digital twin: devices, robot, cell loader, clock and RunEngine.

`twin_lab` starts what a simulated lab needs (a Channel Access session with one
cell-loader IOC per station, and an embedded Tiled server) and builds one
`StationRig` per station of a campaign. The campaign runner, the IPython profile
and the queue-server startup all get their stations here, so a station is wired
one way only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from bluesky import RunEngine

from tandem.campaign.config import Campaign, CampaignStation
from tandem.catalog_layout import raw_runs_node
from tandem.document_queue import DocumentCallback, DocumentQueue, UnwrittenDocumentsError
from tandem.protocols import StationDevices
from tandem.replaying_writer import ReplayingTiledWriter
from tandem.robots.cell_loader import CellLoader
from tandem.robots.liquid_handler import LiquidHandler
from tandem.run_writer import subscribe_tiled_writer
from tandem.sim.cell_loader_ioc import CellLoaderIOC
from tandem.sim.clock import StationClock
from tandem.sim.ioc import CAEnvironment, ca_session, serve_ioc
from tandem.sim.liquid_handler import SimulatedLiquidHandler
from tandem.sim.station_devices import simulated_station
from tandem.sim.station_model import TwinStationModel
from tandem.sim.truth import load_truth
from tandem.stations import device_names
from tandem.store_guard import StopSignal, StoreGuard
from tandem.tiled_endpoint import TiledEndpoint
from tandem.tiled_server import EmbeddedTiledServer

logger = logging.getLogger(__name__)

#: PV prefix of a station's cell loader; the station id is upper-cased into it.
CELL_LOADER_PREFIX = "TANDEM:{station}:CL:"


@dataclass
class StationRig:
    """Everything that runs samples at one station. Live objects, not values."""

    id: str
    #: the station as the campaign knows it: its file entry (`spec`), deck, instrument, solvent
    campaign_station: CampaignStation
    #: its devices (detector, shutter, monitor, ...), by which plans run
    station: StationDevices
    clock: StationClock
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


class _Timekeeper:
    """Charges the station clock for the cell loader's work, which runs in the IOC on wall time.

    The cell loader is real EPICS hardware to the plans; only the twin knows how
    long loading and rinsing take at the beamline, so station time is spent here,
    as the `load` and `rinse` streams happen, keeping the timeline in order.
    """

    def __init__(self, clock: StationClock, load_s: float, rinse_s: float) -> None:
        self.clock = clock
        self.durations = {"load": load_s, "rinse": rinse_s}
        self._streams: dict[str, str] = {}

    def __call__(self, name: str, doc: Mapping[str, Any]) -> None:
        if name == "descriptor" and doc.get("name") in self.durations:
            self._streams[str(doc["uid"])] = str(doc["name"])
        elif name == "event":
            stream = self._streams.get(str(doc["descriptor"]))
            if stream is not None:
                self.clock.spend(self.durations[stream], stream)
        elif name == "stop":
            self._streams.clear()


def build_twin_rig(
    station: CampaignStation,
    *,
    truth: str,
    seed: int,
    time_scale: float,
    tiled_client: Any | None,
    cell_loader_prefix: str,
    start_s: float = 0.0,
    wrap_writer: Callable[[DocumentCallback], DocumentCallback] | None = None,
    background_writer: bool = False,
    store: StoreGuard | None = None,
) -> StationRig:
    """One station of the twin, its RunEngine writing to `tiled_client` (None: nowhere).

    With `background_writer`, runs are written to Tiled by a thread of their own (the rig's
    `writer`): `RE(plan)` returns before its run is in Tiled, and whoever needs it there waits
    on `rig.writer.barrier()`. The writer must be closed when the rig is done with (`twin_lab` does).
    It holds its documents through a store outage, waiting on `store` (which restarts an embedded
    server), and stores each run exactly once however often it is interrupted.
    """
    clock = StationClock(station.id, time_scale=time_scale, start_s=start_s)
    model = TwinStationModel(station.instrument, load_truth(truth))
    devices, _driver = simulated_station(
        station.id,
        station.probe,
        model,
        clock=clock,
        rng=np.random.default_rng([seed, _station_salt(station.id)]),
        temperature_c=station.spec.scan.temperature_c,
    )
    robot = SimulatedLiquidHandler(station.deck.pipettes, clock, seed=seed + _station_salt(station.id))
    names = device_names(station.id)
    liquid_handler = LiquidHandler(robot, station.deck, name=names.liquid_handler)
    cell_loader = CellLoader(cell_loader_prefix, name=names.cell_loader)
    cell_loader.wait_for_connection(timeout=10)
    # no signal handlers: several RunEngines share the process, and the CLI owns Ctrl-C
    run_engine = RunEngine({}, context_managers=[])
    queued: DocumentQueue | None = None
    if tiled_client is not None and background_writer:
        outages = None if store is None else (lambda: store.outages)
        inner = ReplayingTiledWriter(raw_runs_node(tiled_client), outages=outages)
        queued = DocumentQueue(
            wrap_writer(inner) if wrap_writer else inner,
            name=f"{station.id} Tiled writer",
            wait_for_store=None if store is None else store.wait_for_store,
        )
        run_engine.subscribe(queued)
    elif tiled_client is not None:
        subscribe_tiled_writer(run_engine, tiled_client, wrap=wrap_writer)
    costs = station.instrument.time_costs
    run_engine.subscribe(_Timekeeper(clock, load_s=costs.sample_load_s, rinse_s=costs.sample_load_s))
    return StationRig(station.id, station, devices, clock, liquid_handler, cell_loader, run_engine, queued)


@dataclass
class TwinLab:
    """The running services of a simulated lab and the rigs of its stations."""

    campaign: Campaign
    endpoint: TiledEndpoint | None
    ca: CAEnvironment
    rigs: dict[str, StationRig]
    #: the embedded Tiled server the lab owns, and the guard that waits out (and repairs) its outages
    server: EmbeddedTiledServer | None = None
    store: StoreGuard | None = None

    @property
    def tiled_client(self) -> Any:
        return None if self.endpoint is None else self.endpoint.connect()


@contextlib.contextmanager
def twin_lab(
    campaign: Campaign,
    data_directory: Path | None,
    *,
    stations: tuple[str, ...] | None = None,
    clock_starts_s: Mapping[str, float] | None = None,
    wrap_writer: Callable[[DocumentCallback], DocumentCallback] | None = None,
    background_writer: bool = False,
    stop_requested: StopSignal | None = None,
    store_report: Callable[[str], None] | None = None,
) -> Iterator[TwinLab]:
    """Start the lab's services, build its rigs, and stop everything on exit, also on failure.

    `data_directory` holds the Tiled catalog (None: no Tiled server, runs go nowhere); `lab.store`
    guards it (`lab.store.wait_for_store(stop_requested)` before each sample) and `store_report`
    hears one line when an outage starts and one when it ends. With `background_writer`, each rig
    writes to Tiled from a thread (see `build_twin_rig`); its queue is drained before the server
    stops, unless `stop_requested` says stop while the store does not answer: the documents not
    written are then reported and kept as JSON lines under `data_directory/unwritten/`.
    """
    wanted = stations or tuple(campaign.stations)
    with contextlib.ExitStack() as stack:
        env = stack.enter_context(ca_session(n_servers=max(2, len(wanted))))
        endpoint = None
        client = None
        server = None
        store = None
        if data_directory is not None:
            # the store dies with the campaign even on kill -9, so that --resume can start it again
            server = EmbeddedTiledServer(data_directory / "tiled", die_with_parent=True)
            endpoint = stack.enter_context(server)
            # closed before the server stops (the stack unwinds backwards): no restart while stopping
            store = StoreGuard(endpoint, server=server, report=store_report)
            stack.callback(store.close)
            client = endpoint.connect()
        rigs: dict[str, StationRig] = {}
        for sid, port in zip(wanted, env.server_ports, strict=False):
            prefix = CELL_LOADER_PREFIX.format(station=sid.upper())
            stack.enter_context(
                serve_ioc(CellLoaderIOC, prefix, env, port, options={"time_scale": campaign.twin.time_scale})
            )
            rigs[sid] = build_twin_rig(
                campaign.stations[sid],
                truth=campaign.twin.truth,
                seed=campaign.twin.seed,
                time_scale=campaign.twin.time_scale,
                tiled_client=client,
                cell_loader_prefix=prefix,
                start_s=(clock_starts_s or {}).get(sid, 0.0),
                wrap_writer=wrap_writer,
                background_writer=background_writer,
                store=store,
            )
            if rigs[sid].writer is not None:
                # after the server and its guard in the stack, so closed (its queue written, the guard
                # still able to restart the server) before either stops
                stack.callback(_close_writer, rigs[sid], stop_requested, data_directory)
        # libca must let go of its circuits before the IOCs stop, or it reports disconnects
        stack.callback(_finalize_libca)
        yield TwinLab(campaign, endpoint, env, rigs, server, store)


def _close_writer(rig: StationRig, stop_requested: StopSignal | None, data_directory: Path | None) -> None:
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


def _finalize_libca() -> None:
    import sys

    epics_ca = sys.modules.get("epics.ca")
    if epics_ca is not None:
        epics_ca.finalize_libca()


def _station_salt(station_id: str) -> int:
    """A stable per-station integer, so two stations of one seed draw different noise."""
    return sum((i + 1) * ord(ch) for i, ch in enumerate(station_id)) % 10_007
