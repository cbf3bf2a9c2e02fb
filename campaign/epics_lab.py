"""A real lab: each station's rig built from its instrument profile (`backend: epics`), on the wall clock.

For every station the profile gives: the beamline devices over Channel Access at the
profile's station prefix (`tandem.devices.station.build_epics_station`), the cell loader
at its prefix, the robot of its `robot:` entry through PyLabRobot
(`tandem.robots.pylabrobot_backend.PyLabRobotBackend`, on the campaign station's deck),
a RunEngine writing to the lab's Tiled server, and a `WallClock` on which the
RunEngine's work is recorded as it happens (`RunTimekeeper`).

Nothing is left half-started and nothing moves before everything answers: every
station's PVs are connected first (a `StationConnectionError` names the station, its
prefix and the PVs that did not answer), then every robot is set up (a
`StationRobotError` names the robot), and only then is the data store started. On
exit the robots are stopped and the store closed, also on failure. No line of
`tandem.sim` is imported here: the IOCs a test serves are the hardware.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tandem.analysis.pipeline_settings import StationCalibration
from tandem.campaign.config import Campaign, CampaignStation
from tandem.campaign.station_rig import StationRig, Store, close_writer, open_store, station_run_engine
from tandem.campaign.wall_clock import RunTimekeeper, WallClock
from tandem.devices.station import OphydStationDevices, StationConfig, build_epics_station
from tandem.document_queue import DocumentCallback
from tandem.errors import TandemError
from tandem.instrument_profile import ROBOT_BACKENDS, ProfileFacts
from tandem.robots.cell_loader import CellLoader
from tandem.robots.liquid_handler import LiquidHandler
from tandem.robots.pylabrobot_backend import PyLabRobotBackend
from tandem.stations import device_names
from tandem.store_guard import StopSignal, StoreGuard, stop_predicate

logger = logging.getLogger(__name__)

#: how long a station's PVs have to answer when the lab starts, in s
CONNECT_TIMEOUT_S = 5.0
#: the robot backend of the twin, which a real station cannot use
_TWIN_ROBOT = "simulated"


class EpicsLabError(TandemError, RuntimeError):
    """A real station's rig cannot be built."""


class StationConnectionError(EpicsLabError, ConnectionError):
    """A station's devices or cell loader did not answer on Channel Access."""


class StationRobotError(EpicsLabError):
    """A station's robot, as its profile names it, cannot be used or did not come up."""


@dataclass
class Connected:
    """A station whose PVs answer, before its robot is set up."""

    station: CampaignStation
    profile: ProfileFacts
    devices: OphydStationDevices
    cell_loader: CellLoader


@dataclass
class EpicsLab:
    """The running services of a real lab and the rigs of its stations (`tandem.campaign.station_rig.Lab`)."""

    campaign: Campaign
    rigs: dict[str, StationRig]
    data: Store | None = None

    @property
    def store(self) -> StoreGuard | None:
        return None if self.data is None else self.data.guard

    @property
    def tiled_client(self) -> Any:
        return None if self.data is None else self.data.client()

    def calibrations(self) -> dict[str, StationCalibration]:
        """Each station's calibration, from the file its profile names for its default configuration."""
        return {sid: station_calibration(rig.campaign_station) for sid, rig in self.rigs.items()}


def profile_of(station: CampaignStation) -> ProfileFacts:
    """The station's profile, which must say `backend: epics` (a typed error names the station if not)."""
    facts = station.instrument
    if not isinstance(facts, ProfileFacts) or facts.backend != "epics":
        raise EpicsLabError(
            f"station {station.id!r} is not an EPICS station: give it an instrument profile with "
            "'backend: epics' (docs/reference/instrument-profile.md)"
        )
    return facts


def station_calibration(station: CampaignStation) -> StationCalibration:
    """The calibration of the station's default configuration; unit factors (logged) if it names none."""
    calibration = configuration_calibration(station, station.default_configuration)
    if calibration is None:
        logger.warning(
            "station %s: its profile names no calibration for configuration %r; its curves are reduced "
            "with unit efficiency, open-beam ratio and path length (not on an absolute scale)",
            station.id,
            station.default_configuration,
        )
        return StationCalibration()
    return calibration


def configuration_calibration(station: CampaignStation, configuration: str) -> StationCalibration | None:
    """The calibration the station's profile names for `configuration` (None: it names none)."""
    profile = profile_of(station)
    path = profile.calibration_path(configuration)
    if path is None:
        return None
    # checked when the campaign was loaded: the file holds an entry under the profile's name
    entry = json.loads(Path(path).read_text())[profile.station]
    return StationCalibration.from_dict(entry)


@contextlib.contextmanager
def epics_lab(
    campaign: Campaign,
    data_directory: Path | None,
    *,
    wrap_writer: Callable[[DocumentCallback], DocumentCallback] | None = None,
    background_writer: bool = False,
    stop_requested: StopSignal | None = None,
    store_report: Callable[[str], None] | None = None,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
) -> Iterator[EpicsLab]:
    """Connect the campaign's EPICS stations, set up their robots, serve the store; stop it all on exit.

    `data_directory` holds the Tiled catalog (None: runs go nowhere); the other arguments are
    `tandem.campaign.rig.twin_lab`'s.
    """
    profiles = {sid: profile_of(station) for sid, station in campaign.stations.items()}
    for sid, profile in profiles.items():
        if profile.profile.robot.backend == _TWIN_ROBOT:
            known = ", ".join(b for b in ROBOT_BACKENDS if b != _TWIN_ROBOT)
            raise StationRobotError(
                f"station {sid!r}: robot backend {_TWIN_ROBOT!r} is the digital twin's; a real station "
                f"names a PyLabRobot backend in its profile's robot: {known}"
            )
    # every station answers before any robot moves: a wrong prefix costs no robot command
    connected = {sid: _connect(campaign.stations[sid], p, connect_timeout_s) for sid, p in profiles.items()}
    with contextlib.ExitStack() as stack:
        robots = {sid: stack.enter_context(_robot(c)) for sid, c in connected.items()}
        data = None if data_directory is None else open_store(stack, data_directory, store_report)
        client = None if data is None else data.client()
        # one start for every station's clock: station times of a campaign are comparable
        started_at = time.time()
        rigs: dict[str, StationRig] = {}
        for sid, station in connected.items():
            run_engine, writer = station_run_engine(
                sid,
                client,
                wrap_writer=wrap_writer,
                background_writer=background_writer,
                store=None if data is None else data.guard,
            )
            clock = WallClock(sid, started_at=started_at, stop_requested=stop_predicate(stop_requested))
            keeper = RunTimekeeper(clock)
            run_engine.subscribe(keeper)
            # bluesky types the hook as its default, None; any callable(new_state, old_state) is taken
            run_engine.state_hook = keeper.state_changed  # type: ignore[assignment]
            names = device_names(sid)
            handler = LiquidHandler(robots[sid], station.station.deck, name=names.liquid_handler)
            rigs[sid] = StationRig(
                sid, station.station, station.devices, clock, handler, station.cell_loader, run_engine, writer
            )
            if writer is not None:
                # closed (its queue written) before the store stops: the stack unwinds backwards
                stack.callback(close_writer, rigs[sid], stop_requested, data_directory)
        yield EpicsLab(campaign, rigs, data)


def _connect(station: CampaignStation, profile: ProfileFacts, timeout_s: float) -> Connected:
    """The station's devices and cell loader, connected, or a `StationConnectionError` naming the PVs."""
    prefix, loader_prefix = profile.prefixes(station.id)
    config = StationConfig(
        name=station.id,
        probe=station.probe,
        backend="epics",
        prefix=prefix,
        connection_timeout_s=timeout_s,
    )
    try:
        devices = build_epics_station(config)
    except TimeoutError as exc:
        raise StationConnectionError(
            f"station {station.id!r}: its devices at PV prefix {prefix!r} did not answer on Channel "
            f"Access within {timeout_s:g} s: {exc}. Is the IOC up, and EPICS_CA_ADDR_LIST pointing at it?"
        ) from None
    loader = CellLoader(loader_prefix, name=device_names(station.id).cell_loader)
    try:
        loader.wait_for_connection(timeout=timeout_s)
    except TimeoutError as exc:
        raise StationConnectionError(
            f"station {station.id!r}: its cell loader at PV prefix {loader_prefix!r} did not answer on "
            f"Channel Access within {timeout_s:g} s: {exc}"
        ) from None
    return Connected(station, profile, devices, loader)


@contextlib.contextmanager
def _robot(connected: Connected) -> Iterator[PyLabRobotBackend]:
    """The station's robot as its profile names it, on the campaign station's deck; stopped on exit."""
    spec = connected.profile.profile.robot
    sid = connected.station.id
    try:
        robot = PyLabRobotBackend(connected.station.deck, spec.backend, backend_options=spec.options)
    except TandemError as exc:
        raise StationRobotError(
            f"station {sid!r}: its robot {spec.backend!r} did not come up: {exc}"
        ) from exc
    try:
        yield robot
    finally:
        try:
            robot.close()
        except TandemError:  # the robot's error was the news; the campaign's outcome stands
            logger.exception("station %s: stopping its robot %r failed", sid, spec.backend)


__all__ = [
    "CONNECT_TIMEOUT_S",
    "Connected",
    "EpicsLab",
    "EpicsLabError",
    "StationConnectionError",
    "StationRobotError",
    "configuration_calibration",
    "epics_lab",
    "profile_of",
    "station_calibration",
]
