"""The `tandem` command: one typer app that every sub-command module registers on."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

import tandem

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
