"""`tandem station start|status|stop`: a station's RunEngine inside bluesky-queueserver."""

from __future__ import annotations

import contextlib
import datetime
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tandem.cli.app import StationCampaignOption, app
from tandem.errors import TandemError

if TYPE_CHECKING:
    from tandem.campaign.processes import StationProcessStatus
    from tandem.campaign.station_state import StationProcess

station_app = typer.Typer(
    name="station",
    help="Run a station's RunEngine in a bluesky-queueserver RE Manager (with Redis): on loopback ports, "
    "or (--listen) where agents on other hosts reach it.",
    no_args_is_help=True,
)
app.add_typer(station_app)

StateDir = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        envvar="TANDEM_STATE_DIR",
        help="Where the running stations are recorded (default: ~/.local/state/tandem).",
        show_default=False,
    ),
]


def _fail(error: Exception) -> typer.Exit:
    typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=1)


@station_app.command("start")
def start(
    station: Annotated[str, typer.Argument(help="Station id of the campaign, for example saxs or sans.")],
    *,
    sim: Annotated[
        bool,
        typer.Option("--sim/--epics", help="The digital twin's station (default), or the EPICS hardware."),
    ] = True,
    campaign: StationCampaignOption = None,
    redis: Annotated[
        str | None,
        typer.Option(
            "--redis",
            help="HOST:PORT of a running Redis; without it tandem starts redis-server on a free "
            "loopback port (or reuses the one it started for another station).",
        ),
    ] = None,
    listen: Annotated[
        str,
        typer.Option(
            "--listen",
            help="IP address the station takes requests on: 127.0.0.1 for this host only, 0.0.0.0 (or "
            "one interface's address) for an agent on another host. Off loopback, encrypt with a 0MQ "
            "key pair from qserver-zmq-keys: QSERVER_ZMQ_PRIVATE_KEY_FOR_SERVER here, "
            "QSERVER_ZMQ_PUBLIC_KEY for the clients.",
        ),
    ] = "127.0.0.1",
    control_port: Annotated[
        int, typer.Option("--control-port", help="Control port (0MQ); 0: any free one.", min=0, max=65535)
    ] = 0,
    info_port: Annotated[
        int, typer.Option("--info-port", help="Console-output port (0MQ); 0: any free one.", min=0, max=65535)
    ] = 0,
    autostart: Annotated[
        bool, typer.Option("--autostart/--no-autostart", help="Run items as soon as they are queued.")
    ] = True,
    timeout_s: Annotated[
        float, typer.Option("--timeout", min=1, help="Seconds to wait for the station to be ready.")
    ] = 180.0,
    state_dir: StateDir = None,
) -> None:
    """Start Redis (where missing) and the station's RE Manager; return when the station is ready.

    The RE Manager runs profiles/queueserver/startup.py, which builds the station (devices, robot,
    RunEngine writing to Tiled) as the IPython profile does. Tiled comes from TANDEM_TILED_URI and
    TANDEM_TILED_API_KEY (`tandem data serve` prints them). The processes outlive this command; stop them
    with `tandem station stop`. Prints the ports, and the `qserver` command that talks to the station.
    """
    from tandem.campaign.processes import Listen, start_station

    try:
        process = start_station(
            station,
            state_dir=state_dir,
            sim=sim,
            campaign=campaign,
            redis=redis,
            listen=Listen(listen, control_port, info_port),
            autostart=autostart,
            timeout_s=timeout_s,
        )
    except TandemError as error:
        raise _fail(error) from error
    typer.echo(f"station {process.station} ready ({process.backend}), pid {process.pid}")
    typer.echo(f"  control  {process.control_addr}")
    typer.echo(f"  info     {process.info_addr}")
    typer.echo(f"  redis    {process.redis_addr} (keys {process.redis_prefix}*)")
    typer.echo(f"  log      {process.log_path}")
    typer.echo(f"  try      {process.qserver_command()} status")


#: an ophyd signal in a connection error: "saxs_detector.acquire (TANDEM:SAXS:det:Acquire)"
_SIGNAL_PV = re.compile(r"[\w.]+ \(([^()\s]+)\)")


def _pv_summary(pvs: Iterable[str]) -> str:
    names = list(dict.fromkeys(pvs))
    if not names:
        return "no answer"
    if len(names) == 1:
        return f"{names[0]} does not answer"
    return f"{names[0]} and {len(names) - 1} more of its PVs do not answer"


def _unreachable_pvs(device: Any, timeout_s: float) -> list[str]:
    """The PVs of an ophyd `device` that do not connect within `timeout_s` (empty: all connected)."""
    try:
        device.wait_for_connection(timeout=timeout_s)
    except TimeoutError:
        return [
            walk.item.pvname
            for walk in device.walk_signals()
            if not walk.item.connected and hasattr(walk.item, "pvname")
        ]
    return []


def epics_device_problems(process: StationProcess, timeout_s: float) -> list[str]:
    """What of an EPICS station's hardware does not answer on Channel Access ("device: PV ...").

    The PV prefixes are the ones `tandem station start --epics` gives the station: from
    `TANDEM_STATION_PREFIX` / `TANDEM_CELL_LOADER_PREFIX`, else the station's instrument
    profile's, else the tandem defaults.
    """
    from tandem.campaign.session_config import EpicsPrefixes, resolve_campaign, station_profile
    from tandem.devices.signals import DeviceTimeoutError
    from tandem.devices.station import StationConfig, build_epics_station
    from tandem.robots.cell_loader import CellLoader
    from tandem.stations import device_names

    sid = process.station
    station = resolve_campaign(process.campaign).stations[sid]
    prefixes = EpicsPrefixes.for_station(
        sid,
        station=os.environ.get("TANDEM_STATION_PREFIX"),
        cell_loader=os.environ.get("TANDEM_CELL_LOADER_PREFIX"),
        profile=station_profile(station),
    )
    probe = station.probe
    problems = []
    try:
        build_epics_station(
            StationConfig(
                name=sid,
                probe=probe,
                backend="epics",
                prefix=prefixes.station,
                connection_timeout_s=timeout_s,
            )
        )
    except DeviceTimeoutError as exc:
        # the station says which device (the first that failed); ophyd's message names its PVs
        device = str(exc).split(": ", 1)[-1].split(" did not connect", 1)[0]
        problems.append(f"{device} — {_pv_summary(_SIGNAL_PV.findall(str(exc)))}")
    loader = CellLoader(prefixes.cell_loader, name=device_names(sid).cell_loader)
    missing = _unreachable_pvs(loader, timeout_s)
    if missing:
        problems.append(f"cell loader — {_pv_summary(missing)}")
    return problems


def _ioc_address(pid: int) -> tuple[str, int] | None:
    """Where the caproto IOC `pid` serves, from the environment it was started with."""
    try:
        variables = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    env = dict(v.decode(errors="replace").partition("=")[::2] for v in variables if b"=" in v)
    with contextlib.suppress(KeyError, ValueError):
        return env.get("EPICS_CAS_INTF_ADDR_LIST", "127.0.0.1").split()[0], int(env["EPICS_CAS_SERVER_PORT"])
    return None


def twin_device_problems(process: StationProcess, timeout_s: float) -> list[str]:
    """Whether the twin station's cell-loader IOC runs and answers (empty: it does, or /proc cannot tell).

    The twin's station devices live inside the station's worker; its cell loader is a caproto IOC
    the worker started, on Channel Access ports of the worker's own, so it is found among the
    station's processes and asked at the port it serves on.
    """
    from tandem.child_processes import command_line, descendants
    from tandem.instrument_profile import default_prefixes
    from tandem.sim.ioc import search

    if not Path("/proc/self/stat").exists():
        return []
    _, prefix = default_prefixes(process.station)
    for pid in descendants(process.pid):
        argv = command_line(pid) or []
        if "tandem.sim.ioc" in argv and prefix in argv:
            address = _ioc_address(pid)
            pv = f"{prefix}Busy-RB"
            if address is None or search(pv, address, timeout_s):
                return []
            host, port = address
            return [f"cell loader — {pv} does not answer (its IOC, pid {pid}, serves {host}:{port})"]
    return [f"cell loader — its IOC ({prefix}) is not running"]


def device_problems(entry: StationProcessStatus, timeout_s: float) -> list[str] | None:
    """What of a station's hardware does not answer (None: nothing to ask, its worker has no devices)."""
    if not entry.alive or not (entry.status or {}).get("worker_environment_exists"):
        return None
    if entry.process.backend == "epics":
        return epics_device_problems(entry.process, timeout_s)
    return twin_device_problems(entry.process, timeout_s)


@station_app.command("status")
def status(
    station: Annotated[str | None, typer.Argument(help="Only this station.", show_default=False)] = None,
    *,
    device_timeout_s: Annotated[
        float,
        typer.Option(
            "--device-timeout", min=0.1, help="Seconds each device has to answer on Channel Access."
        ),
    ] = 2.0,
    state_dir: StateDir = None,
) -> None:
    """Show each started station: its process, ports, its RE Manager's word, whether its devices answer.

    Once a station's environment is open its devices are asked on Channel Access: an EPICS
    station's at the prefixes of TANDEM_STATION_PREFIX / TANDEM_CELL_LOADER_PREFIX (else the
    defaults), the twin's cell-loader IOC where it serves (its other devices live in the worker).
    One that does not answer makes the station "unreachable", naming the device and its PVs,
    instead of "idle". Exit status 1 when a station is dead, not answering or unreachable.
    """
    from tandem.campaign.processes import station_status
    from tandem.campaign.redis_service import redis_ping
    from tandem.campaign.station_state import read_state

    state = read_state(state_dir)
    if state.redis is not None:
        answering = "answering" if redis_ping(state.redis.host, state.redis.port) else "NOT answering"
        owner = f"started by tandem, pid {state.redis.pid}" if state.redis.managed else "external"
        typer.echo(f"redis {state.redis.address} ({owner}): {answering}")
    shown = [s for s in station_status(state_dir) if station in (None, s.process.station)]
    if not shown:
        typer.echo("no station is running" if station is None else f"station {station!r} is not running")
        raise typer.Exit(code=0 if station is None else 1)
    unreachable = False
    for entry in shown:
        p = entry.process
        since = datetime.datetime.fromtimestamp(p.started_at).isoformat(timespec="seconds")
        problems = device_problems(entry, device_timeout_s)
        if problems:
            # not "idle": a station whose hardware is gone fails every sample it is given
            unreachable = True
            typer.echo(f"{p.station}: unreachable: {'; '.join(problems)}")
            typer.echo(f"  RE Manager: {entry.summary}")
        else:
            typer.echo(f"{p.station}: {entry.summary}")
            if problems is not None:
                typer.echo("  devices: every device answers")
        typer.echo(f"  pid {p.pid} ({p.backend}) since {since}, control {p.control_addr}, info {p.info_addr}")
        running = (entry.status or {}).get("running_item_uid")
        if running:
            typer.echo(f"  running item {running}")
    if unreachable or any(not s.alive or s.status is None for s in shown):
        raise typer.Exit(code=1)


@station_app.command("stop")
def stop(
    stations: Annotated[
        list[str] | None,
        typer.Argument(help="Stations to stop (default: every one started).", show_default=False),
    ] = None,
    *,
    state_dir: StateDir = None,
) -> None:
    """Stop stations' RE Managers (closing their RunEngine environments first), and Redis once unused.

    A Redis given with --redis at start is never stopped. Items still queued stay in Redis.
    """
    from tandem.campaign.processes import stop_station
    from tandem.campaign.station_state import read_state

    state = read_state(state_dir)
    wanted = stations or list(state.stations)
    unknown = [s for s in wanted if s not in state.stations]
    if unknown:
        known = ", ".join(state.stations) or "none"
        raise _fail(TandemError(f"not running: {', '.join(unknown)} (running: {known})"))
    try:
        for sid in wanted:
            stop_station(sid, state_dir=state_dir)
            typer.echo(f"station {sid} stopped")
    except TandemError as error:
        raise _fail(error) from error
