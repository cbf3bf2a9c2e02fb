"""How a station session is wired: its data store, its station rig (twin or EPICS) and its analysis.

The rig on the twin is the digital twin's station, robot and clock, with the cell
loader over Channel Access to a caproto IOC. On EPICS, a station whose instrument
profile says `backend: epics` is a real line: its devices and cell loader at its PV
prefixes and the PyLabRobot robot its profile names, built as a campaign builds it
(`tandem.campaign.epics_lab`), with typed errors before anything moves; a station on
one of the twin's instruments gets the devices at their prefixes and the simulated
robot. The data store is attached to when configured, re-attached to when an earlier
session left it serving the data folder, else served from there. Measurements, not
preparation runs, go to the analysis.

The twin is imported only where a session chooses it, so a real line's session loads
no line of `tandem.sim`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from bluesky import RunEngine

from tandem.analysis.pipeline_settings import AnalysisSettings, StationCalibration
from tandem.campaign.config import Campaign
from tandem.campaign.epics_lab import (
    CONNECT_TIMEOUT_S,
    StationConnectionError,
    epics_lab,
    station_calibration,
)
from tandem.campaign.session_config import EpicsPrefixes, on_real_line, station_profile
from tandem.campaign.station_rig import StationRig
from tandem.devices.station import StationConfig, build_epics_station
from tandem.instrument_profile import EpicsSpec, ProfileFacts
from tandem.robots.cell_loader import CellLoader
from tandem.robots.liquid_handler import LiquidHandler
from tandem.stations import device_names
from tandem.tiled_directory import find_running_server
from tandem.tiled_endpoint import API_KEY_ENV, URI_ENV, TiledEndpoint, TiledSettings, attach
from tandem.tiled_server import tiled_service

_T = TypeVar("_T")

#: runs of the formulation lab: no frames, nothing to reduce
_PREPARATION_PLANS = frozenset({"prepare_sample", "load_sample", "rinse_cell", "prepare_load_rinse"})


def analysis_settings(
    campaign: Campaign, station_id: str, calibration: StationCalibration | None
) -> AnalysisSettings:
    """How the session analyses its station's runs: `calibration`, by default the one of the file the
    station's profile names for its default configuration (a real line), or the twin instrument's."""
    station = campaign.stations[station_id]
    if calibration is None and on_real_line(station):
        calibration = station_calibration(station)
    elif calibration is None:
        from tandem.sim.calibration import twin_calibration

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
    from tandem.campaign.rig import build_twin_rig, twin_lab

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
        stack=stack,
    )


def real_line_rig(
    stack: contextlib.ExitStack,
    campaign: Campaign,
    station_id: str,
    prefixes: EpicsPrefixes,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
) -> StationRig:
    """A real line's rig as its profile describes it, at `prefixes` (which win over the profile's).

    Built by `tandem.campaign.epics_lab`, as a campaign on the line builds it: every PV answers
    before the robot is set up (a `StationConnectionError` names the prefix and the PVs that did
    not), then the profile's PyLabRobot robot (a `StationRobotError`: a backend not installed, a
    robot that does not answer); `stack` stops the robot when the session closes.
    """
    station = campaign.stations[station_id]
    profile = station_profile(station)
    assert profile is not None  # the caller asked `on_real_line`
    epics = EpicsSpec(station_prefix=prefixes.station, cell_loader_prefix=prefixes.cell_loader)
    pinned = ProfileFacts(profile.profile.model_copy(update={"epics": epics}), profile.base)
    # the lab of this one station, its store the session's own (`None`: the session subscribes it)
    one = dataclasses.replace(
        campaign, stations={station_id: dataclasses.replace(station, instrument=pinned)}
    )
    lab = stack.enter_context(epics_lab(one, None, connect_timeout_s=connect_timeout_s))
    return lab.rigs[station_id]


def epics_rig(
    stack: contextlib.ExitStack,
    campaign: Campaign,
    station_id: str,
    prefixes: EpicsPrefixes,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
) -> StationRig:
    """The station's devices and cell loader over Channel Access, with the simulated robot.

    For a station on one of the twin's instruments, which names no robot of its own; `stack`
    stops the robot when the session closes.
    """
    from tandem.sim.clock import StationClock
    from tandem.sim.liquid_handler import SimulatedLiquidHandler, station_robot

    station = campaign.stations[station_id]
    names = device_names(station_id)
    config = StationConfig(
        name=station_id,
        probe=station.probe,
        backend="epics",
        prefix=prefixes.station,
        connection_timeout_s=connect_timeout_s,
    )
    devices = _answering(station_id, "its devices", prefixes.station, lambda: build_epics_station(config))
    cell_loader = CellLoader(prefixes.cell_loader, name=names.cell_loader)
    _answering(
        station_id,
        "its cell loader",
        prefixes.cell_loader,
        lambda: cell_loader.wait_for_connection(timeout=connect_timeout_s),
    )
    # the robot is simulated, so it keeps simulated time; the twin's time scale says how fast
    clock = StationClock(station_id, time_scale=campaign.twin.time_scale)
    spec = station_robot(station.instrument)
    robot = stack.enter_context(
        SimulatedLiquidHandler(
            station.deck,
            clock,
            seed=campaign.twin.seed,
            backend=spec.backend,
            backend_options=spec.options,
        )
    )
    liquid_handler = LiquidHandler(robot, station.deck, name=names.liquid_handler)
    run_engine = RunEngine({}, context_managers=[])
    return StationRig(station_id, station, devices, clock, liquid_handler, cell_loader, run_engine)


def _answering(station_id: str, what: str, prefix: str, connect: Callable[[], _T]) -> _T:
    """`connect()`, or a `StationConnectionError` naming the station, the prefix and the silent PVs."""
    try:
        return connect()
    except TimeoutError as exc:
        # ophyd's message lists every signal that did not connect, with its PV
        raise StationConnectionError(
            f"station {station_id!r}: {what} at PV prefix {prefix!r} did not answer on Channel Access: "
            f"{exc}. Is the IOC up, and EPICS_CA_ADDR_LIST pointing at it?"
        ) from None


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
