"""How a station session is wired: its data store, its station rig (twin or EPICS) and its analysis.

The rig on the twin is the digital twin's station, robot and clock, with the cell
loader over Channel Access to a caproto IOC; on EPICS, the station's devices and
the cell loader at their PV prefixes, and the simulated robot until a real robot
backend exists. The data store is attached to when configured, re-attached to when
an earlier session left it serving the data folder, else served from there.
Measurements, not preparation runs, go to the analysis.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bluesky import RunEngine

from tandem.analysis.pipeline_settings import AnalysisSettings, StationCalibration
from tandem.campaign.config import Campaign
from tandem.campaign.rig import StationRig, build_twin_rig, twin_lab
from tandem.campaign.session_config import EpicsPrefixes
from tandem.devices.station import StationConfig, build_epics_station
from tandem.robots.cell_loader import CellLoader
from tandem.robots.liquid_handler import LiquidHandler
from tandem.sim.calibration import twin_calibration
from tandem.sim.clock import StationClock
from tandem.sim.liquid_handler import SimulatedLiquidHandler
from tandem.stations import device_names
from tandem.tiled_directory import find_running_server
from tandem.tiled_endpoint import API_KEY_ENV, URI_ENV, TiledEndpoint, TiledSettings, attach
from tandem.tiled_server import tiled_service

#: runs of the formulation lab: no frames, nothing to reduce
_PREPARATION_PLANS = frozenset({"prepare_sample", "load_sample", "rinse_cell", "prepare_load_rinse"})


def analysis_settings(
    campaign: Campaign, station_id: str, calibration: StationCalibration | None
) -> AnalysisSettings:
    """How the session analyses its station's runs: `calibration`, by default the twin instrument's."""
    station = campaign.stations[station_id]
    if calibration is None:
        # what a facility measures with standards; the twin's instrument model knows it exactly
        calibration = twin_calibration(station.instrument)
    solvents = tuple(dict.fromkeys([*(s.solvent.name for s in campaign.stations.values()), "H2O", "D2O"]))
    return AnalysisSettings(calibrations={station_id: calibration}, solvent_names=solvents)


def data_store(
    stack: contextlib.ExitStack, tiled: TiledEndpoint | TiledSettings | None, data: Path
) -> tuple[TiledEndpoint, str]:
    """The Tiled endpoint the session writes to, and how it was reached (for the banner)."""
    if isinstance(tiled, TiledEndpoint):
        return attach(tiled.url, tiled.api_key), "attached"
    settings = tiled if tiled is not None else TiledSettings()
    if settings.uri is not None:
        return stack.enter_context(tiled_service(settings)), "attached"
    directory = settings.directory or data / "tiled"
    running = find_running_server(directory)
    if running is not None:
        return running, f"re-attached to the server an earlier session left serving {directory}"
    settings = TiledSettings(directory=directory, api_key=settings.api_key)
    endpoint = stack.enter_context(tiled_service(settings))
    return endpoint, f"started on {directory}; set {URI_ENV} and {API_KEY_ENV} to share one"


def twin_rig(
    stack: contextlib.ExitStack, campaign: Campaign, station_id: str, cell_loader_prefix: str | None
) -> StationRig:
    """The twin's rig of the station; its own cell-loader IOC unless `cell_loader_prefix` names one."""
    if cell_loader_prefix is None:
        lab = stack.enter_context(twin_lab(campaign, None, stations=(station_id,)))
        return lab.rigs[station_id]
    return build_twin_rig(
        campaign.stations[station_id],
        truth=campaign.twin.truth,
        seed=campaign.twin.seed,
        time_scale=campaign.twin.time_scale,
        tiled_client=None,
        cell_loader_prefix=cell_loader_prefix,
    )


def epics_rig(campaign: Campaign, station_id: str, prefixes: EpicsPrefixes) -> StationRig:
    """The station's devices and cell loader over Channel Access, with the simulated robot."""
    station = campaign.stations[station_id]
    devices = build_epics_station(
        StationConfig(name=station_id, probe=station.probe, backend="epics", prefix=prefixes.station)
    )
    # the robot is simulated, so it keeps simulated time; the twin's time scale says how fast
    clock = StationClock(station_id, time_scale=campaign.twin.time_scale)
    robot = SimulatedLiquidHandler(station.deck.pipettes, clock, seed=campaign.twin.seed)
    names = device_names(station_id)
    liquid_handler = LiquidHandler(robot, station.deck, name=names.liquid_handler)
    cell_loader = CellLoader(prefixes.cell_loader, name=names.cell_loader)
    cell_loader.wait_for_connection(timeout=10)
    run_engine = RunEngine({}, context_managers=[])
    return StationRig(station_id, station, devices, clock, liquid_handler, cell_loader, run_engine)


class MeasurementsOnly:
    """Passes on the documents of runs that measured something; preparation runs have nothing to reduce."""

    def __init__(self, callback: Callable[[str, Mapping[str, Any]], None]) -> None:
        self._callback = callback
        self._skipped: set[str] = set()

    def __call__(self, name: str, doc: Mapping[str, Any]) -> None:
        if name == "start" and doc.get("plan_name") in _PREPARATION_PLANS:
            self._skipped.add(str(doc["uid"]))
            return
        run = doc.get("run_start") if name in ("descriptor", "stop") else None
        if run is not None and str(run) in self._skipped:
            if name == "stop":
                self._skipped.discard(str(run))
            return
        self._callback(name, doc)
