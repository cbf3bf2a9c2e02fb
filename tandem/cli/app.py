"""The `tandem` command: one typer app that every sub-command module registers on."""

from __future__ import annotations

import typer

import tandem

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
