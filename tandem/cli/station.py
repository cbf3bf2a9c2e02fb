"""`tandem station start|status|stop`: a station's RunEngine inside bluesky-queueserver."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Annotated

import typer

from tandem.cli.app import StationCampaignOption, app
from tandem.errors import TandemError

station_app = typer.Typer(
    name="station",
    help="Run a station's RunEngine in a bluesky-queueserver RE Manager (with Redis), on loopback ports.",
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
    TANDEM_TILED_API_KEY (`tandem serve` prints them). The processes outlive this command; stop them
    with `tandem station stop`. Prints the ports, and the `qserver` command that talks to the station.
    """
    from tandem.campaign.processes import start_station

    try:
        process = start_station(
            station,
            state_dir=state_dir,
            sim=sim,
            campaign=campaign,
            redis=redis,
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


@station_app.command("status")
def status(
    station: Annotated[str | None, typer.Argument(help="Only this station.", show_default=False)] = None,
    *,
    state_dir: StateDir = None,
) -> None:
    """Show each started station: its process, ports, and what its RE Manager says (queue, history)."""
    from tandem.campaign.processes import read_state, redis_ping, station_status

    state = read_state(state_dir)
    if state.redis is not None:
        answering = "answering" if redis_ping(state.redis.host, state.redis.port) else "NOT answering"
        owner = f"started by tandem, pid {state.redis.pid}" if state.redis.managed else "external"
        typer.echo(f"redis {state.redis.address} ({owner}): {answering}")
    shown = [s for s in station_status(state_dir) if station in (None, s.process.station)]
    if not shown:
        typer.echo("no station is running" if station is None else f"station {station!r} is not running")
        raise typer.Exit(code=0 if station is None else 1)
    for entry in shown:
        p = entry.process
        since = datetime.datetime.fromtimestamp(p.started_at).isoformat(timespec="seconds")
        typer.echo(f"{p.station}: {entry.summary}")
        typer.echo(f"  pid {p.pid} ({p.backend}) since {since}, control {p.control_addr}, info {p.info_addr}")
        running = (entry.status or {}).get("running_item_uid")
        if running:
            typer.echo(f"  running item {running}")
    if any(not s.alive or s.status is None for s in shown):
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
    from tandem.campaign.processes import read_state, stop_station

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
