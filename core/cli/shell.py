"""`tandem shell`: IPython with one station loaded (the bundled ``profiles/ipython/profile_tandem``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from tandem.bundled_profiles import IPYTHON_PROFILE, writable_ipython_profile
from tandem.cli.app import StationCampaignOption, app

DEFAULT_DATA = Path("tandem-data")


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=1)


def shell_environment(
    station: str,
    *,
    sim: bool,
    campaign: Path | None,
    data: Path,
    station_prefix: str | None = None,
    cell_loader_prefix: str | None = None,
) -> dict[str, str]:
    """The variables the profile reads (see its ``startup/00-station.py``)."""
    env = {
        "TANDEM_STATION": station,
        "TANDEM_SIM": "true" if sim else "false",
        "TANDEM_DATA": str(data.absolute()),
    }
    if campaign is not None:
        env["TANDEM_CAMPAIGN"] = str(campaign.absolute())
    if station_prefix:
        env["TANDEM_STATION_PREFIX"] = station_prefix
    if cell_loader_prefix:
        env["TANDEM_CELL_LOADER_PREFIX"] = cell_loader_prefix
    return env


def ipython_command(profile_dir: Path, extra: list[str]) -> list[str]:
    # -P: nothing in the working directory shadows an installed package (a folder named like one)
    return [sys.executable, "-P", "-m", "IPython", f"--profile-dir={profile_dir}", *extra]


def _check_station(station: str, campaign: Path | None, *, sim: bool) -> None:
    """Refuse, before IPython starts rather than at its prompt, a station the campaign lacks or a real
    line (its profile says `backend: epics`) asked for on the twin."""
    from tandem.campaign.session_config import check_backend, resolve_campaign
    from tandem.errors import TandemError

    try:
        check_backend(resolve_campaign(campaign), station, sim=sim)
    except TandemError as error:
        raise _fail(str(error)) from error


@app.command(
    "shell",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def shell(
    ctx: typer.Context,
    *,
    station: Annotated[
        str,
        typer.Option("--station", "-s", help="The station to load, an id of the campaign (saxs, sans)."),
    ],
    sim: Annotated[
        bool,
        typer.Option(
            "--sim/--epics",
            help="--sim: the digital twin (devices, robot, cell-loader IOC started here). "
            "--epics: the station's hardware over Channel Access; a station whose instrument profile "
            "says backend: epics also gets the robot the profile names, and the session opens only "
            "once every PV and the robot answer.",
        ),
    ] = True,
    campaign: StationCampaignOption = None,
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            "-d",
            file_okay=False,
            help="Folder of the session's Tiled store (DATA/tiled), curve plots and IPython history. "
            "Ignored for the store if TANDEM_TILED_URI and TANDEM_TILED_API_KEY name a running server.",
        ),
    ] = DEFAULT_DATA,
    station_prefix: Annotated[
        str | None,
        typer.Option(
            "--station-prefix",
            envvar="TANDEM_STATION_PREFIX",
            help="EPICS: PV prefix of the station's devices. This option wins, then "
            "TANDEM_STATION_PREFIX, then the station's instrument profile (epics.station_prefix), "
            "then TANDEM:<STATION>:",
            show_default=False,
        ),
    ] = None,
    cell_loader_prefix: Annotated[
        str | None,
        typer.Option(
            "--cell-loader-prefix",
            envvar="TANDEM_CELL_LOADER_PREFIX",
            help="EPICS: PV prefix of the cell loader. This option wins, then "
            "TANDEM_CELL_LOADER_PREFIX, then the station's instrument profile "
            "(epics.cell_loader_prefix), then TANDEM:<STATION>:CL:",
            show_default=False,
        ),
    ] = None,
    profile_dir: Annotated[
        Path | None,
        typer.Option(
            "--profile-dir",
            file_okay=False,
            help="The IPython profile to start (a site's own copy); copied into DATA, where IPython "
            "keeps its state. Default: the profile bundled with tandem (tandem/profiles/ipython/"
            "profile_tandem in the installed package).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Start IPython at a station: RunEngine writing to Tiled, devices, robot, plans, a Tiled client.

    The banner says what is loaded. Then, for example:

        RE(measure_empty_cell())
        RE(prepare({"SDS": 0.05, "NaCl": 0.01}))
        RE(load()); RE(measure_sample()); RE(rinse())
        show_curve()

    or the whole sample in one run, as the agent queues it: RE(sample_plan({"SDS": 0.05})).
    Each run prints bluesky's live table (BestEffortCallback, named bec: bec.disable_table()
    hides it; plots are off).
    Anything after `--` goes to IPython (for example `-- -c "RE(sample_plan({'SDS': 0.05}))"`).
    Everything the session started (IOCs, a Tiled server) stops when IPython exits.
    """
    profile_dir = profile_dir or IPYTHON_PROFILE
    startup = profile_dir / "startup"
    if not startup.is_dir():
        raise _fail(
            f"no IPython profile at {profile_dir} (it has no startup/ folder); name a copy of "
            f"tandem's profile ({IPYTHON_PROFILE}) with --profile-dir"
        )
    _check_station(station, campaign, sim=sim)
    from tandem.data_folder import DataFolderError, claim_data_folder

    try:
        # the session writes its store, plots and history there: never into a folder of the user's
        claim_data_folder(data)
    except DataFolderError as error:
        raise _fail(str(error)) from error
    env = {
        **os.environ,
        **shell_environment(
            station,
            sim=sim,
            campaign=campaign,
            data=data,
            station_prefix=station_prefix,
            cell_loader_prefix=cell_loader_prefix,
        ),
    }
    command = ipython_command(writable_ipython_profile(profile_dir, data), list(ctx.args))
    sys.stdout.flush()
    sys.stderr.flush()
    # replace this process: Ctrl-C and the exit status then belong to IPython alone
    os.execve(command[0], command, env)
