"""A station's live rig on the digital twin: devices, robot, cell loader, clock and RunEngine.

`twin_lab` starts what a simulated lab needs (a Channel Access session with one
cell-loader IOC per station, and an embedded Tiled server) and builds one
`StationRig` (`tandem.campaign.station_rig`) per station of a campaign. The campaign
runner, the IPython profile and the queue-server startup all get their twin stations
here, so a station is wired one way only; a real station's rig is built from its
profile by `tandem.campaign.epics_lab`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tandem.analysis.pipeline_settings import StationCalibration
from tandem.campaign.config import Campaign, CampaignStation
from tandem.campaign.station_rig import StationRig, close_writer, open_store, station_run_engine
from tandem.document_queue import DocumentCallback
from tandem.instrument_profile import default_prefixes
from tandem.robots.cell_loader import CellLoader
from tandem.robots.liquid_handler import LiquidHandler
from tandem.sim.calibration import twin_calibration
from tandem.sim.cell_loader_ioc import CellLoaderIOC
from tandem.sim.clock import StationClock
from tandem.sim.ioc import CAEnvironment, ca_session, serve_ioc
from tandem.sim.liquid_handler import SimulatedLiquidHandler, station_robot
from tandem.sim.station_devices import simulated_station
from tandem.sim.station_model import TwinStationModel
from tandem.sim.truth import load_truth
from tandem.stations import device_names
from tandem.store_guard import StopSignal, StoreGuard
from tandem.tiled_endpoint import TiledEndpoint
from tandem.tiled_server import EmbeddedTiledServer

logger = logging.getLogger(__name__)


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
    stack: contextlib.ExitStack,
) -> StationRig:
    """One station of the twin, its RunEngine writing to `tiled_client` (None: nowhere).

    Its robot (PyLabRobot's, as the station's profile names it) is stopped when `stack` closes.

    With `background_writer`, runs are written to Tiled by a thread of their own (see
    `tandem.campaign.station_rig.station_run_engine`); `twin_lab` closes it.
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
    spec = station_robot(station.instrument)
    # entered first: whatever fails below, the stack stops the robot and its loop thread
    robot = stack.enter_context(
        SimulatedLiquidHandler(
            station.deck,
            clock,
            seed=seed + _station_salt(station.id),
            backend=spec.backend,
            backend_options=spec.options,
        )
    )
    names = device_names(station.id)
    liquid_handler = LiquidHandler(robot, station.deck, name=names.liquid_handler)
    cell_loader = CellLoader(cell_loader_prefix, name=names.cell_loader)
    cell_loader.wait_for_connection(timeout=10)
    run_engine, queued = station_run_engine(
        station.id, tiled_client, wrap_writer=wrap_writer, background_writer=background_writer, store=store
    )
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

    def calibrations(self) -> dict[str, StationCalibration]:
        """What a facility measures with standards; the twin's instrument models know it exactly."""
        return {sid: twin_calibration(rig.campaign_station.instrument) for sid, rig in self.rigs.items()}


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
            started = open_store(stack, data_directory, store_report)
            endpoint, server, store = started.endpoint, started.server, started.guard
            client = started.client()
        rigs: dict[str, StationRig] = {}
        for sid, port in zip(wanted, env.server_ports, strict=False):
            _, prefix = default_prefixes(sid)
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
                stack=stack,
            )
            if rigs[sid].writer is not None:
                # after the server and its guard in the stack, so closed (its queue written, the guard
                # still able to restart the server) before either stops
                stack.callback(close_writer, rigs[sid], stop_requested, data_directory)
        # libca must let go of its circuits before the IOCs stop, or it reports disconnects
        stack.callback(_finalize_libca)
        yield TwinLab(campaign, endpoint, env, rigs, server, store)


def _finalize_libca() -> None:
    import sys

    epics_ca = sys.modules.get("epics.ca")
    if epics_ca is not None:
        epics_ca.finalize_libca()


def _station_salt(station_id: str) -> int:
    """A stable per-station integer, so two stations of one seed draw different noise."""
    return sum((i + 1) * ord(ch) for i, ch in enumerate(station_id)) % 10_007
