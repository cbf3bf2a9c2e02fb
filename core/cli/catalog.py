"""`tandem data serve|stop|runs`: the embedded data store (Tiled) and what is in it."""

from __future__ import annotations

import datetime
import ipaddress
import signal
import socket
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from tandem.child_processes import ALL_INTERFACES
from tandem.cli.app import TiledDirectoryOption, app, attached_store
from tandem.errors import TandemError

DEFAULT_DIRECTORY = Path("tandem-data")


def _fail(error: Exception) -> typer.Exit:
    typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=1)


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


data_app = typer.Typer(
    name="data",
    help="The data store: serve the embedded Tiled server, stop it, list the runs in it.",
    no_args_is_help=True,
)
app.add_typer(data_app)


@data_app.command("serve")
def serve(
    *,
    directory: Annotated[
        Path,
        typer.Option(
            "--directory",
            "-d",
            envvar="TANDEM_TILED_DIRECTORY",
            help="Folder holding the catalog, the data files and the API key; created if missing, "
            "reused if present (a campaign resumes from it).",
        ),
    ] = DEFAULT_DIRECTORY,
    port: Annotated[
        int, typer.Option("--port", "-p", min=0, max=65535, help="Port to listen on; 0 picks a free one.")
    ] = 0,
    listen: Annotated[
        str,
        typer.Option(
            "--listen",
            help="IP address to listen on: 127.0.0.1 for this host only, 0.0.0.0 (or one interface's "
            "address) for processes on other hosts; across sites, behind an HTTPS proxy, with --roles.",
        ),
    ] = "127.0.0.1",
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="TANDEM_TILED_API_KEY",
            help="API key clients must present (letters and digits). Default: the key kept in "
            "DIRECTORY, generated on first use.",
            show_default=False,
        ),
    ] = None,
    catalog_db: Annotated[
        str | None,
        typer.Option(
            "--catalog-db",
            envvar="TANDEM_TILED_CATALOG_DB",
            help="PostgreSQL database for the catalog (postgresql://USER:PASSWORD@HOST:PORT/DB), with "
            "--tables-db; default: SQLite in DIRECTORY. Give passwords through the environment "
            "variable, not the command line, which other users can see.",
            show_default=False,
        ),
    ] = None,
    tables_db: Annotated[
        str | None,
        typer.Option(
            "--tables-db",
            envvar="TANDEM_TILED_TABLES_DB",
            help="PostgreSQL database for the tables (the runs' event rows), with --catalog-db; "
            "default: DuckDB in DIRECTORY.",
            show_default=False,
        ),
    ] = None,
    roles: Annotated[
        bool,
        typer.Option(
            "--roles",
            help="Give each role its own key (`tandem data keys issue`): a station's key writes raw "
            "runs only, analysis analysed results, the agent its campaigns, a scientist verdicts. "
            "DIRECTORY's key becomes the owner's, which issues them. A directory once served so "
            "is always served so.",
        ),
    ] = False,
) -> None:
    """Run the embedded Tiled data store in the foreground until Ctrl-C.

    Prints the URL and API key, and the two environment variables with which other
    tandem processes (analysis workers, the agent daemon, an IPython session) attach.
    `tandem data stop --directory DIR` stops it from another terminal. At scale the catalog
    and tables live in PostgreSQL (--catalog-db and --tables-db); arrays stay in DIRECTORY.
    With --roles the printed key is the owner's: give each process its role's key instead.
    """
    from tandem.tiled_directory import SqlDatabases
    from tandem.tiled_endpoint import API_KEY_ENV, URI_ENV, TiledEndpoint
    from tandem.tiled_server import EmbeddedTiledServer

    if (catalog_db is None) != (tables_db is None):
        raise _fail(ValueError("give both --catalog-db and --tables-db (PostgreSQL), or neither (SQLite)"))
    try:
        ipaddress.ip_address(listen)
    except ValueError:
        raise _fail(
            ValueError(f"--listen takes an IP address of this host (127.0.0.1, 0.0.0.0, ...), got {listen!r}")
        ) from None
    try:
        databases = None if catalog_db is None or tables_db is None else SqlDatabases(catalog_db, tables_db)
        server = EmbeddedTiledServer(
            directory,
            api_key=api_key,
            port=port,
            host=listen,
            databases=databases,
            roles=True if roles else None,
        )
        endpoint = server.start()
    except TandemError as error:
        raise _fail(error) from error
    # SIGINT too: a shell starts background jobs with SIGINT ignored, and we want both to stop us cleanly
    previous = {sig: signal.signal(sig, _raise_keyboard_interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        where = "" if databases is None else " (catalog and tables in PostgreSQL)"
        typer.echo(f"Tiled serving {server.directory}{where}")
        if listen == ALL_INTERFACES:  # what other hosts connect to; this host may use either
            url = endpoint.url.replace(ALL_INTERFACES, socket.gethostname())
            endpoint = TiledEndpoint(url, endpoint.api_key)
        typer.echo(f"  URL:      {endpoint.url}")
        typer.echo(f"  API key:  {endpoint.api_key}")
        typer.echo(f"  browser:  {endpoint.url}/?api_key={endpoint.api_key}")
        if server.roles:
            typer.echo("Served with roles: this is the owner's key. Give each process its role's key:")
            every_role = "station analysis agent scientist"
            typer.echo(f"  tandem data keys issue {every_role} --directory {server.directory}")
            typer.echo(f"  export {URI_ENV}={endpoint.url}")
            typer.echo(f"  export {API_KEY_ENV}=$(cat {server.directory}/keys/ROLE)")
        else:
            typer.echo("Attach other processes with:")
            typer.echo(f"  export {URI_ENV}={endpoint.url}")
            typer.echo(f"  export {API_KEY_ENV}={endpoint.api_key}")
        typer.echo("Press Ctrl-C to stop.")
        status = server.wait()
        typer.secho(f"the Tiled server exited on its own (status {status}); see {server.log_path}", err=True)
        raise typer.Exit(code=1)
    except KeyboardInterrupt:
        typer.echo("stopping the Tiled server")
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@data_app.command("stop")
def stop(
    *,
    directory: Annotated[
        Path,
        typer.Option(
            "--directory",
            "-d",
            envvar="TANDEM_TILED_DIRECTORY",
            help="The folder the server serves (or a campaign's data folder, whose tiled/ it serves).",
        ),
    ] = DEFAULT_DIRECTORY,
    timeout_s: Annotated[
        float, typer.Option("--timeout", min=0, help="Seconds to wait before the server is killed.")
    ] = 30.0,
) -> None:
    """Stop the Tiled server that serves DIRECTORY (a `tandem data serve`, or one left behind).

    A `tandem data serve` is asked to stop (SIGTERM) and stops its server; a server whose owner is
    gone is stopped itself. The server of a running campaign, session or station is refused:
    stop that, and its server goes with it.
    """
    from tandem.cli.server_stop import stop_served_directory

    try:
        message = stop_served_directory(directory, timeout_s=timeout_s)
    except TandemError as error:
        raise _fail(error) from error
    typer.echo(message)


@data_app.command("runs")
def runs(
    *,
    campaign: Annotated[
        str | None, typer.Option("--campaign", "-c", help="Only runs of this campaign id.")
    ] = None,
    station: Annotated[
        str | None, typer.Option("--station", "-s", help="Only runs of this station (saxs, sans).")
    ] = None,
    sample: Annotated[str | None, typer.Option("--sample", help="Only runs of this sample uid.")] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="Only runs that ended so: success, fail or abort.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=0, help="Show at most this many runs.")] = 50,
    oldest_first: Annotated[
        bool, typer.Option("--oldest-first", help="Oldest first (default: newest first).")
    ] = False,
    directory: TiledDirectoryOption = None,
) -> None:
    """List raw runs in the data store, newest first."""
    from rich.table import Table

    from tandem.catalog import Catalog
    from tandem.cli.output import console, esc

    try:
        endpoint = attached_store(directory)
        catalog = Catalog.connect(endpoint)
        found = catalog.runs(
            campaign_id=campaign,
            station=station,
            sample_uid=sample,
            exit_status=status,
            newest_first=not oldest_first,
            limit=limit,
        )
    except (TandemError, ValueError) as error:
        raise _fail(error) from error

    table = Table(title=f"{len(found)} run(s) in {esc(endpoint.url)}", title_justify="left")
    for column in ("uid", "started", "plan", "station", "campaign", "sample", "events", "status"):
        table.add_column(column, no_wrap=column in ("uid", "started"))
    colours = {"success": "green", "fail": "red", "abort": "yellow"}
    for run in found:
        ended = run.exit_status.value if run.exit_status else "open"
        status_text = f"[{colours.get(ended, 'cyan')}]{ended}[/]"
        if run.reason:
            status_text += f": {esc(run.reason)}"
        started = datetime.datetime.fromtimestamp(run.time).isoformat(sep=" ", timespec="seconds")
        table.add_row(
            run.uid[:8],
            started,
            esc(run.plan_name or ""),
            esc(run.station or ""),
            esc(run.campaign_id or ""),
            (run.sample_uid or "")[:8],
            str(sum(run.num_events.values())),
            status_text,
        )
    console().print(table)
