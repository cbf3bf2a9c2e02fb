"""The `tandem` command: one typer app that every sub-command module registers on."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

import tandem
from tandem.errors import TandemError
from tandem.tiled_endpoint import TiledEndpoint

#: `--directory`: the data folder of a running `tandem data serve`, for commands that attach to Tiled
TiledDirectoryOption = Annotated[
    Path | None,
    typer.Option(
        "--directory",
        "-d",
        help="Attach to the `tandem data serve` running on this folder (default: TANDEM_TILED_URI and "
        "TANDEM_TILED_API_KEY from the environment).",
    ),
]

#: `--campaign`: the campaign file a station takes its deck, instrument and scan limits from
StationCampaignOption = Annotated[
    Path | None,
    typer.Option(
        "--campaign",
        "-c",
        exists=True,
        dir_okay=False,
        help="Campaign file naming the station's deck, instrument and scan limits "
        "(default: the bundled demo, campaign/demo/demo.yaml).",
        show_default=False,
    ),
]

app = typer.Typer(
    name="tandem",
    help="Self-driving formulation labs at linked SAXS and SANS stations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"tandem {tandem.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Self-driving formulation labs at linked SAXS and SANS stations."""


def attached_store(directory: Path | None) -> TiledEndpoint:
    """The data store a command reads or writes: the `tandem data serve` running on `directory`, else
    the server TANDEM_TILED_URI and TANDEM_TILED_API_KEY name (on this host or another); a
    `TandemError` says which is missing."""
    from tandem.tiled_directory import find_running_server
    from tandem.tiled_endpoint import TiledSettings, attach

    if directory is not None:
        endpoint = find_running_server(directory)
        if endpoint is None:
            raise TandemError(
                f"no Tiled server is running on {directory}; start one with `tandem data serve`"
            )
        return endpoint
    settings = TiledSettings()
    if settings.uri is None or settings.api_key is None:
        raise TandemError(
            "no data store: set TANDEM_TILED_URI and TANDEM_TILED_API_KEY "
            "(`tandem data serve` prints them) or pass --directory"
        )
    return attach(settings.uri, settings.api_key.get_secret_value())
